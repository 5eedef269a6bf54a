package csi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/internal/mountinfo"
	"github.com/sftpfs/sftpfs/mounter"
	"github.com/sftpfs/sftpfs/options"
)

// stagedVolume is one FUSE mount of a volume on this node, at its staging
// path, and the bind mounts of it at publish targets.
type stagedVolume struct {
	id   string
	path string
	// key identifies the stage request (options, read-only), to tell a
	// repeated NodeStageVolume from a conflicting one.
	key string
	m   *mounter.Mounted
	// targets maps each publish target to its bind flags. Guarded by
	// Driver.mu (changed only under the volume's operation lock too).
	targets map[string]bindFlags
}

// bindFlags are the per-publish mount flags, applied to the bind mount.
type bindFlags struct {
	readOnly, noSUID, noDev, noExec, noATime bool
}

func (f bindFlags) mountFlags() uintptr {
	var fl uintptr
	for _, x := range []struct {
		on bool
		f  uintptr
	}{{f.readOnly, unix.MS_RDONLY}, {f.noSUID, unix.MS_NOSUID}, {f.noDev, unix.MS_NODEV}, {f.noExec, unix.MS_NOEXEC}, {f.noATime, unix.MS_NOATIME}} {
		if x.on {
			fl |= x.f
		}
	}
	return fl
}

// splitMountFlags sorts volume_capability.mount.mount_flags into bind
// flags (applied per publish) and sftpfs options (applied to the FUSE
// mount at stage). Anything else is refused: silently ignoring a flag
// such as noexec would be a security surprise.
func splitMountFlags(flags []string) (bindFlags, map[string]string, error) {
	var b bindFlags
	opts := map[string]string{}
	var bad []string
	for _, raw := range flags {
		for _, fl := range strings.Split(raw, ",") {
			fl = strings.TrimSpace(fl)
			switch fl {
			case "":
			case "ro":
				b.readOnly = true
				opts[options.OptRO] = "true"
			case "rw":
			case "nosuid":
				b.noSUID = true
			case "nodev":
				b.noDev = true
			case "noexec":
				b.noExec = true
			case "noatime":
				b.noATime = true
			default:
				k, v, hasValue := strings.Cut(fl, "=")
				o, ok := options.Lookup(k)
				if !ok {
					bad = append(bad, fl)
					continue
				}
				if !hasValue {
					if o.Kind != options.Bool {
						bad = append(bad, fl)
						continue
					}
					v = "true"
				}
				opts[k] = v
			}
		}
	}
	if len(bad) > 0 {
		return b, nil, status.Errorf(codes.InvalidArgument, "mount flags %q are not supported: use ro, rw, nosuid, nodev, noexec, noatime, or sftpfs options as name=value (e.g. uid=1000)", strings.Join(bad, ","))
	}
	return b, opts, nil
}

// NodeGetCapabilities: staging (one connection and FUSE mount per volume
// per node, see doc.go), stats and volume condition.
func (d *Driver) NodeGetCapabilities(context.Context, *csipb.NodeGetCapabilitiesRequest) (*csipb.NodeGetCapabilitiesResponse, error) {
	rpc := func(t csipb.NodeServiceCapability_RPC_Type) *csipb.NodeServiceCapability {
		return &csipb.NodeServiceCapability{Type: &csipb.NodeServiceCapability_Rpc{Rpc: &csipb.NodeServiceCapability_RPC{Type: t}}}
	}
	return &csipb.NodeGetCapabilitiesResponse{Capabilities: []*csipb.NodeServiceCapability{
		rpc(csipb.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME),
		rpc(csipb.NodeServiceCapability_RPC_GET_VOLUME_STATS),
		rpc(csipb.NodeServiceCapability_RPC_VOLUME_CONDITION),
		rpc(csipb.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER),
	}}, nil
}

// NodeGetInfo reports the node ID; every node reaches the servers itself,
// so there is no topology and no volume limit.
func (d *Driver) NodeGetInfo(context.Context, *csipb.NodeGetInfoRequest) (*csipb.NodeGetInfoResponse, error) {
	return &csipb.NodeGetInfoResponse{NodeId: d.cfg.NodeID}, nil
}

// NodeStageVolume connects and mounts the volume's FUSE filesystem at the
// staging path.
func (d *Driver) NodeStageVolume(ctx context.Context, req *csipb.NodeStageVolumeRequest) (*csipb.NodeStageVolumeResponse, error) {
	id, path := req.GetVolumeId(), req.GetStagingTargetPath()
	switch {
	case id == "":
		return nil, status.Error(codes.InvalidArgument, "volume ID is required")
	case path == "":
		return nil, status.Error(codes.InvalidArgument, "staging target path is required")
	}
	if err := checkCapability(req.GetVolumeCapability()); err != nil {
		return nil, err
	}
	opts, err := volumeOptions(req.GetVolumeContext())
	if err != nil {
		return nil, err
	}
	_, flagOpts, err := splitMountFlags(req.GetVolumeCapability().GetMount().GetMountFlags())
	if err != nil {
		return nil, err
	}
	maps.Copy(opts, flagOpts)
	if readOnlyMode(req.GetVolumeCapability()) {
		opts[options.OptRO] = "true"
	}
	canon, err := options.Canonical(opts)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	key := fmt.Sprint(canon)
	path = filepath.Clean(path)

	unlock := d.lock(id)
	defer unlock()
	d.mu.Lock()
	sv := d.staged[id]
	d.mu.Unlock()
	if sv != nil {
		if sv.path == path && sv.key == key {
			return &csipb.NodeStageVolumeResponse{}, nil
		}
		return nil, status.Errorf(codes.AlreadyExists, "volume %q is already staged at %s with other options", id, sv.path)
	}
	if err := os.MkdirAll(path, 0o750); err != nil {
		return nil, status.Errorf(codes.Internal, "creating the staging path: %v", err)
	}
	// A mount left here by a previous run of the plugin is dead: its
	// FUSE server was that process.
	detachStale(path, d.log)

	cfg, ms, err := d.parseVolume(id, opts, req.GetSecrets())
	if err != nil {
		return nil, err
	}
	mctx, cancel := context.WithTimeout(ctx, d.cfg.MountTimeout)
	defer cancel()
	m, err := mounter.Mount(mctx, cfg, path, d.log.With("volume", id))
	if err != nil {
		ms.Close()
		return nil, connectError(ms, err)
	}
	// The backend re-reads the secret files at every reconnect, for as
	// long as anyone uses the filesystem (a lazily detached mount still
	// serves its last users): release them only when it has stopped, so
	// a descriptor number is never reused under it.
	go func() { <-m.Done(); ms.Close() }()
	d.mu.Lock()
	d.staged[id] = &stagedVolume{id: id, path: path, key: key, m: m, targets: map[string]bindFlags{}}
	d.mu.Unlock()
	d.log.Info("volume staged", "volume", id, "remote", cfg.Remote(), "path", path)
	return &csipb.NodeStageVolumeResponse{}, nil
}

// NodeUnstageVolume unmounts the FUSE filesystem of the volume.
func (d *Driver) NodeUnstageVolume(_ context.Context, req *csipb.NodeUnstageVolumeRequest) (*csipb.NodeUnstageVolumeResponse, error) {
	id, path := req.GetVolumeId(), req.GetStagingTargetPath()
	switch {
	case id == "":
		return nil, status.Error(codes.InvalidArgument, "volume ID is required")
	case path == "":
		return nil, status.Error(codes.InvalidArgument, "staging target path is required")
	}
	path = filepath.Clean(path)
	unlock := d.lock(id)
	defer unlock()
	d.mu.Lock()
	sv := d.staged[id]
	d.mu.Unlock()
	if sv == nil || sv.path != path {
		detachStale(path, d.log)
		return &csipb.NodeUnstageVolumeResponse{}, nil
	}
	// The CO unpublishes first; a target it forgot would keep serving
	// (the bind holds the session), so release those too.
	for _, t := range d.targetsOf(sv) {
		unmountBind(t, d.log)
	}
	if err := sv.m.Unmount(); err != nil {
		return nil, status.Errorf(codes.Internal, "unmounting %s: %v", path, err)
	}
	d.mu.Lock()
	delete(d.staged, id)
	d.mu.Unlock()
	d.log.Info("volume unstaged", "volume", id, "path", path)
	return &csipb.NodeUnstageVolumeResponse{}, nil
}

// NodePublishVolume bind-mounts the staged filesystem at the target path,
// read-only when the request, the access mode or a mount flag says so.
func (d *Driver) NodePublishVolume(_ context.Context, req *csipb.NodePublishVolumeRequest) (*csipb.NodePublishVolumeResponse, error) {
	id, target, staging := req.GetVolumeId(), req.GetTargetPath(), req.GetStagingTargetPath()
	switch {
	case id == "":
		return nil, status.Error(codes.InvalidArgument, "volume ID is required")
	case target == "":
		return nil, status.Error(codes.InvalidArgument, "target path is required")
	}
	if err := checkCapability(req.GetVolumeCapability()); err != nil {
		return nil, err
	}
	if staging == "" {
		return nil, status.Error(codes.InvalidArgument, "staging target path is required: this plugin stages volumes (STAGE_UNSTAGE_VOLUME)")
	}
	flags, _, err := splitMountFlags(req.GetVolumeCapability().GetMount().GetMountFlags())
	if err != nil {
		return nil, err
	}
	flags.readOnly = flags.readOnly || req.GetReadonly() || readOnlyMode(req.GetVolumeCapability())
	target, staging = filepath.Clean(target), filepath.Clean(staging)

	unlock := d.lock(id)
	defer unlock()
	d.mu.Lock()
	sv := d.staged[id]
	d.mu.Unlock()
	if sv == nil || sv.path != staging {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %q is not staged at %s", id, staging)
	}
	d.mu.Lock()
	prev, ok := sv.targets[target]
	d.mu.Unlock()
	if ok {
		if prev == flags {
			return &csipb.NodePublishVolumeResponse{}, nil
		}
		return nil, status.Errorf(codes.AlreadyExists, "volume %q is already published at %s with other flags", id, target)
	}
	if other := d.publishedAt(target); other != "" {
		return nil, status.Errorf(codes.AlreadyExists, "target %s is in use by volume %q", target, other)
	}
	if err := os.MkdirAll(target, 0o750); err != nil {
		return nil, status.Errorf(codes.Internal, "creating the target path: %v", err)
	}
	detachStale(target, d.log)
	if err := unix.Mount(staging, target, "", unix.MS_BIND, ""); err != nil {
		return nil, status.Errorf(codes.Internal, "bind-mounting %s at %s: %v", staging, target, err)
	}
	if fl := flags.mountFlags(); fl != 0 {
		// Flags of a bind mount only take effect on a remount.
		if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|fl, ""); err != nil {
			unmountBind(target, d.log)
			return nil, status.Errorf(codes.Internal, "applying mount flags at %s: %v", target, err)
		}
	}
	d.mu.Lock()
	sv.targets[target] = flags
	d.mu.Unlock()
	d.log.Info("volume published", "volume", id, "target", target, "readonly", flags.readOnly)
	return &csipb.NodePublishVolumeResponse{}, nil
}

// publishedAt returns the volume published at target, or "".
func (d *Driver) publishedAt(target string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, sv := range d.staged {
		if _, ok := sv.targets[target]; ok {
			return id
		}
	}
	return ""
}

// NodeUnpublishVolume removes the bind mount at the target and the target
// directory; the staged mount and every other target stay.
func (d *Driver) NodeUnpublishVolume(_ context.Context, req *csipb.NodeUnpublishVolumeRequest) (*csipb.NodeUnpublishVolumeResponse, error) {
	id, target := req.GetVolumeId(), req.GetTargetPath()
	switch {
	case id == "":
		return nil, status.Error(codes.InvalidArgument, "volume ID is required")
	case target == "":
		return nil, status.Error(codes.InvalidArgument, "target path is required")
	}
	target = filepath.Clean(target)
	unlock := d.lock(id)
	defer unlock()
	d.mu.Lock()
	if sv := d.staged[id]; sv != nil {
		delete(sv.targets, target)
	}
	d.mu.Unlock()
	if err := unmountBind(target, d.log); err != nil {
		return nil, status.Errorf(codes.Internal, "unmounting %s: %v", target, err)
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		d.log.Warn("could not remove the target directory", "target", target, "error", err)
	}
	d.log.Info("volume unpublished", "volume", id, "target", target)
	return &csipb.NodeUnpublishVolumeResponse{}, nil
}

// unmountBind unmounts whatever is mounted at path (lazily when busy);
// nothing mounted is not an error.
func unmountBind(path string, log *slog.Logger) error {
	for mountinfo.IsMounted(path) {
		err := unix.Unmount(path, 0)
		if errors.Is(err, unix.EBUSY) {
			log.Info("target busy; detaching lazily", "target", path)
			err = unix.Unmount(path, unix.MNT_DETACH)
		}
		if err != nil && !errors.Is(err, unix.EINVAL) {
			return err
		}
		if err != nil {
			return nil
		}
	}
	return nil
}

// detachStale lazily detaches mounts at path that this process does not
// know: left by a previous run, whose FUSE server is gone.
func detachStale(path string, log *slog.Logger) {
	for mountinfo.IsMounted(path) {
		log.Info("detaching a stale mount", "path", path)
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil {
			log.Warn("could not detach a stale mount", "path", path, "error", err)
			return
		}
	}
}

// NodeGetVolumeStats reports the space the server announces and, as the
// volume condition, whether the server answers: abnormal while it is
// unreachable (the mount's own reconnect brings it back).
func (d *Driver) NodeGetVolumeStats(ctx context.Context, req *csipb.NodeGetVolumeStatsRequest) (*csipb.NodeGetVolumeStatsResponse, error) {
	id, path := req.GetVolumeId(), req.GetVolumePath()
	switch {
	case id == "":
		return nil, status.Error(codes.InvalidArgument, "volume ID is required")
	case path == "":
		return nil, status.Error(codes.InvalidArgument, "volume path is required")
	}
	path = filepath.Clean(path)
	d.mu.Lock()
	sv := d.staged[id]
	published := false
	if sv != nil {
		_, published = sv.targets[path]
	}
	d.mu.Unlock()
	if sv == nil {
		return nil, status.Errorf(codes.NotFound, "volume %q is not staged on this node", id)
	}
	if path != sv.path && !published {
		return nil, status.Errorf(codes.NotFound, "volume %q is not mounted at %s", id, path)
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.StatsTimeout)
	defer cancel()
	cond := &csipb.VolumeCondition{Message: "the SFTP server answers"}
	if err := sv.m.Alive(ctx); err != nil {
		cond.Abnormal, cond.Message = true, err.Error()
	} else if st := sv.m.Status(); st.State != backend.StateConnected {
		cond.Abnormal, cond.Message = true, fmt.Sprintf("connection %s: %s", st.State, st.LastError)
	}
	bytes := &csipb.VolumeUsage{Unit: csipb.VolumeUsage_BYTES}
	usage := []*csipb.VolumeUsage{bytes}
	if !cond.Abnormal && sv.m.Backend().Capabilities().StatFS {
		if s, err := sv.m.Backend().StatFS(ctx, "."); err == nil {
			bs := int64(s.BlockSize)
			bytes.Total, bytes.Available, bytes.Used = int64(s.Blocks)*bs, int64(s.BlocksAvail)*bs, int64(s.Blocks-s.BlocksFree)*bs
			if s.Files > 0 {
				usage = append(usage, &csipb.VolumeUsage{Unit: csipb.VolumeUsage_INODES,
					Total: int64(s.Files), Available: int64(s.FilesFree), Used: int64(s.Files - s.FilesFree)})
			}
		}
	}
	return &csipb.NodeGetVolumeStatsResponse{Usage: usage, VolumeCondition: cond}, nil
}

// targetsOf lists the publish targets of sv.
func (d *Driver) targetsOf(sv *stagedVolume) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Sorted(maps.Keys(sv.targets))
}

// stagedIDs lists the staged volumes (tests, shutdown).
func (d *Driver) stagedIDs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Sorted(maps.Keys(d.staged))
}
