package csi

import (
	"context"
	"maps"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/sftpfs/sftpfs/options"
)

// GetPluginInfo names the driver.
func (d *Driver) GetPluginInfo(context.Context, *csipb.GetPluginInfoRequest) (*csipb.GetPluginInfoResponse, error) {
	return &csipb.GetPluginInfoResponse{Name: d.cfg.Name, VendorVersion: d.cfg.Version}, nil
}

// GetPluginCapabilities: this binary always serves the controller.
func (d *Driver) GetPluginCapabilities(context.Context, *csipb.GetPluginCapabilitiesRequest) (*csipb.GetPluginCapabilitiesResponse, error) {
	return &csipb.GetPluginCapabilitiesResponse{Capabilities: []*csipb.PluginCapability{{
		Type: &csipb.PluginCapability_Service_{Service: &csipb.PluginCapability_Service{
			Type: csipb.PluginCapability_Service_CONTROLLER_SERVICE}},
	}}}, nil
}

// Probe: ready as soon as the socket answers; nothing else to wait for.
func (d *Driver) Probe(context.Context, *csipb.ProbeRequest) (*csipb.ProbeResponse, error) {
	return &csipb.ProbeResponse{Ready: wrapperspb.Bool(true)}, nil
}

// ControllerGetCapabilities: create/delete only. There is nothing to attach
// (every node connects to the server itself), no snapshots and no size.
func (d *Driver) ControllerGetCapabilities(context.Context, *csipb.ControllerGetCapabilitiesRequest) (*csipb.ControllerGetCapabilitiesResponse, error) {
	rpc := func(t csipb.ControllerServiceCapability_RPC_Type) *csipb.ControllerServiceCapability {
		return &csipb.ControllerServiceCapability{Type: &csipb.ControllerServiceCapability_Rpc{
			Rpc: &csipb.ControllerServiceCapability_RPC{Type: t}}}
	}
	return &csipb.ControllerGetCapabilitiesResponse{Capabilities: []*csipb.ControllerServiceCapability{
		rpc(csipb.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME),
		rpc(csipb.ControllerServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER),
	}}, nil
}

// checkCapabilities accepts mount access with every access mode: the
// storage is a shared network directory, so any number of nodes and
// writers may use it (MULTI_NODE_MULTI_WRITER). Block access is refused.
func checkCapabilities(caps []*csipb.VolumeCapability) error {
	if len(caps) == 0 {
		return status.Error(codes.InvalidArgument, "volume capabilities are required")
	}
	for _, c := range caps {
		if err := checkCapability(c); err != nil {
			return err
		}
	}
	return nil
}

func checkCapability(c *csipb.VolumeCapability) error {
	if c == nil {
		return status.Error(codes.InvalidArgument, "volume capability is required")
	}
	if c.GetBlock() != nil {
		return status.Error(codes.InvalidArgument, "sftpfs volumes are filesystems: block access is not supported; use --type mount (Swarm) or volumeMode: Filesystem (Kubernetes)")
	}
	if c.GetMount() == nil {
		return status.Error(codes.InvalidArgument, "volume capability needs an access type: mount")
	}
	switch fs := c.GetMount().GetFsType(); fs {
	case "", "sftpfs", "fuse.sftpfs":
	default:
		return status.Errorf(codes.InvalidArgument, "fs_type %q is not supported: sftpfs volumes are sftpfs (leave fs_type empty)", fs)
	}
	if c.GetAccessMode() == nil || c.GetAccessMode().GetMode() == csipb.VolumeCapability_AccessMode_UNKNOWN {
		return status.Error(codes.InvalidArgument, "volume capability needs an access mode")
	}
	return nil
}

// readOnlyMode reports access modes that allow no writer.
func readOnlyMode(c *csipb.VolumeCapability) bool {
	switch c.GetAccessMode().GetMode() {
	case csipb.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY, csipb.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY:
		return true
	}
	return false
}

// CreateVolume validates the parameters with the option table, connects
// once with the secrets, and records the volume. The canonical options go
// back as volume_context, which is how Swarm and Kubernetes hand them to
// the nodes; secrets never do (nodes get their own copy in the secrets
// map). Same name and same options: the same volume; other options:
// ALREADY_EXISTS. Nothing on the server is created (see create_path).
func (d *Driver) CreateVolume(ctx context.Context, req *csipb.CreateVolumeRequest) (*csipb.CreateVolumeResponse, error) {
	name := req.GetName()
	if name == "" {
		return nil, status.Error(codes.InvalidArgument, "volume name is required")
	}
	if err := checkCapabilities(req.GetVolumeCapabilities()); err != nil {
		return nil, err
	}
	if req.GetVolumeContentSource() != nil {
		return nil, status.Error(codes.InvalidArgument, "sftpfs volumes cannot be created from a snapshot or another volume")
	}
	opts, err := volumeOptions(req.GetParameters())
	if err != nil {
		return nil, err
	}
	canon, err := options.Canonical(opts)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	unlock := d.lock("create/" + name)
	defer unlock()
	if prev, ok := d.reg.get(name); ok {
		if !maps.Equal(prev, canon) {
			return nil, status.Errorf(codes.AlreadyExists, "volume %q already exists with other options; remove it first or use another name", name)
		}
		return createResponse(name, canon), nil
	}
	if err := d.check(ctx, name, opts, req.GetSecrets()); err != nil {
		return nil, err
	}
	if err := d.reg.put(name, canon); err != nil {
		return nil, status.Errorf(codes.Internal, "recording volume %q: %v", name, err)
	}
	d.log.Info("volume created", "volume", name, "options", options.Redact(canon))
	return createResponse(name, canon), nil
}

// createResponse: the volume ID is the name, unique among the volumes
// this controller manages. The capacity is unknown (0): the server
// decides.
func createResponse(name string, canon map[string]string) *csipb.CreateVolumeResponse {
	return &csipb.CreateVolumeResponse{Volume: &csipb.Volume{VolumeId: name, VolumeContext: maps.Clone(canon)}}
}

// DeleteVolume forgets the volume. It never touches remote data: the
// directory belongs to the SSH account, not to the volume.
func (d *Driver) DeleteVolume(_ context.Context, req *csipb.DeleteVolumeRequest) (*csipb.DeleteVolumeResponse, error) {
	id := req.GetVolumeId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID is required")
	}
	unlock := d.lock("create/" + id)
	defer unlock()
	if err := d.reg.remove(id); err != nil {
		return nil, status.Errorf(codes.Internal, "forgetting volume %q: %v", id, err)
	}
	return &csipb.DeleteVolumeResponse{}, nil
}

// ValidateVolumeCapabilities confirms the capabilities of a known volume.
func (d *Driver) ValidateVolumeCapabilities(_ context.Context, req *csipb.ValidateVolumeCapabilitiesRequest) (*csipb.ValidateVolumeCapabilitiesResponse, error) {
	id := req.GetVolumeId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID is required")
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "volume capabilities are required")
	}
	if _, ok := d.reg.get(id); !ok {
		return nil, status.Errorf(codes.NotFound, "volume %q does not exist", id)
	}
	if err := checkCapabilities(req.GetVolumeCapabilities()); err != nil {
		return &csipb.ValidateVolumeCapabilitiesResponse{Message: status.Convert(err).Message()}, nil
	}
	return &csipb.ValidateVolumeCapabilitiesResponse{Confirmed: &csipb.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext:      req.GetVolumeContext(),
		VolumeCapabilities: req.GetVolumeCapabilities(),
		Parameters:         req.GetParameters(),
	}}, nil
}
