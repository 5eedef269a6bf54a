package csi

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sftpfs/sftpfs/internal/faultproxy"
	"github.com/sftpfs/sftpfs/internal/mountinfo"
)

const mnmw = csipb.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER

// stage creates and stages a volume and returns its staging path.
func stage(t *testing.T, p *testPlugin, name string, params, secrets map[string]string) (*csipb.Volume, string) {
	t.Helper()
	ctx := ctxT(t)
	cv, err := p.ctrl.CreateVolume(ctx, &csipb.CreateVolumeRequest{Name: name, Parameters: params, Secrets: secrets,
		VolumeCapabilities: []*csipb.VolumeCapability{mountCap(mnmw)}})
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	staging := filepath.Join(p.tmpDir, "staged", name)
	if _, err := p.node.NodeStageVolume(ctx, &csipb.NodeStageVolumeRequest{VolumeId: cv.Volume.VolumeId, StagingTargetPath: staging,
		VolumeCapability: mountCap(mnmw), VolumeContext: cv.Volume.VolumeContext, Secrets: secrets}); err != nil {
		t.Fatalf("NodeStageVolume: %v", err)
	}
	t.Cleanup(func() {
		_, _ = p.node.NodeUnstageVolume(ctxT(t), &csipb.NodeUnstageVolumeRequest{VolumeId: cv.Volume.VolumeId, StagingTargetPath: staging})
	})
	return cv.Volume, staging
}

func publish(t *testing.T, p *testPlugin, vol *csipb.Volume, staging, target string, readonly bool) {
	t.Helper()
	if _, err := p.node.NodePublishVolume(ctxT(t), &csipb.NodePublishVolumeRequest{VolumeId: vol.VolumeId, StagingTargetPath: staging,
		TargetPath: target, Readonly: readonly, VolumeCapability: mountCap(mnmw), VolumeContext: vol.VolumeContext}); err != nil {
		t.Fatalf("NodePublishVolume %s: %v", target, err)
	}
}

// TestPublishTwoTargetsUnpublishOne: one staged mount published at two
// targets (one read-only) serves both; unpublishing one leaves the other
// working and the staged mount in place.
func TestPublishTwoTargetsUnpublishOne(t *testing.T) {
	p := startPlugin(t)
	_, params, secrets := sshdVolume(t)
	remote := params["path"]
	vol, staging := stage(t, p, "two-targets", params, secrets)

	a, b := filepath.Join(p.tmpDir, "pods", "a"), filepath.Join(p.tmpDir, "pods", "b")
	publish(t, p, vol, staging, a, false)
	publish(t, p, vol, staging, b, true)
	// A repeated publish with the same arguments succeeds (idempotent),
	// with other flags it is refused.
	publish(t, p, vol, staging, a, false)
	if _, err := p.node.NodePublishVolume(ctxT(t), &csipb.NodePublishVolumeRequest{VolumeId: vol.VolumeId, StagingTargetPath: staging,
		TargetPath: a, Readonly: true, VolumeCapability: mountCap(mnmw), VolumeContext: vol.VolumeContext}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("publish at %s again read-only: got %v, want AlreadyExists", a, err)
	}

	if err := os.WriteFile(filepath.Join(a, "f"), []byte("through a"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(remote, "f")); err != nil || string(got) != "through a" {
		t.Fatalf("server side after write through a: %q, %v", got, err)
	}
	if got, err := os.ReadFile(filepath.Join(b, "f")); err != nil || string(got) != "through a" {
		t.Fatalf("read through b: %q, %v", got, err)
	}
	if err := os.WriteFile(filepath.Join(b, "g"), []byte("x"), 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("write through the read-only target b: %v, want EROFS", err)
	}

	if _, err := p.node.NodeUnpublishVolume(ctxT(t), &csipb.NodeUnpublishVolumeRequest{VolumeId: vol.VolumeId, TargetPath: a}); err != nil {
		t.Fatalf("NodeUnpublishVolume a: %v", err)
	}
	if mountinfo.IsMounted(a) {
		t.Errorf("%s still mounted after unpublish", a)
	}
	if _, err := os.Stat(a); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("target %s not removed after unpublish: %v", a, err)
	}
	if err := os.WriteFile(filepath.Join(remote, "h"), []byte("from server"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A name created by another client may take up to entry_timeout
	// (1s) to show (README, entry_timeout): poll a little longer.
	var got []byte
	var err error
	for start := time.Now(); time.Since(start) < 3*time.Second; time.Sleep(50 * time.Millisecond) {
		if got, err = os.ReadFile(filepath.Join(b, "h")); err == nil {
			break
		}
	}
	if err != nil || string(got) != "from server" {
		t.Fatalf("read through b after unpublishing a: %q, %v", got, err)
	}
	if !mountinfo.IsMounted(staging) {
		t.Errorf("staging mount %s gone after unpublishing one target", staging)
	}
	// Unpublishing again is fine (idempotent).
	if _, err := p.node.NodeUnpublishVolume(ctxT(t), &csipb.NodeUnpublishVolumeRequest{VolumeId: vol.VolumeId, TargetPath: a}); err != nil {
		t.Errorf("second NodeUnpublishVolume a: %v", err)
	}
}

// TestVolumeConditionFollowsServer: with the server unreachable (a fault
// proxy between the plugin and sshd refuses and drops connections),
// NodeGetVolumeStats reports the volume abnormal; when the server is back
// it reports it normal again, without a remount.
func TestVolumeConditionFollowsServer(t *testing.T) {
	p := startPlugin(t)
	srv, params, secrets := sshdVolume(t)
	px, err := faultproxy.New(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	params["port"] = strconv.Itoa(px.Port())
	params["op_timeout"] = "2s"
	params["keepalive"] = "1s"
	params["keepalive_count"] = "2"
	params["connect_timeout"] = "2s"
	// The known_hosts line names sshd's own port; through the proxy the
	// host key is pinned instead, also from the secrets map.
	delete(secrets, SecretKnownHosts)
	secrets[SecretHostKey] = srv.HostKeyFingerprint
	vol, staging := stage(t, p, "outage", params, secrets)
	target := filepath.Join(p.tmpDir, "pods", "outage")
	publish(t, p, vol, staging, target, false)

	condition := func() *csipb.VolumeCondition {
		t.Helper()
		r, err := p.node.NodeGetVolumeStats(ctxT(t), &csipb.NodeGetVolumeStatsRequest{VolumeId: vol.VolumeId, VolumePath: target})
		if err != nil {
			t.Fatalf("NodeGetVolumeStats: %v", err)
		}
		if len(r.GetUsage()) == 0 {
			t.Fatalf("NodeGetVolumeStats: no usage")
		}
		return r.GetVolumeCondition()
	}
	waitFor := func(abnormal bool) time.Duration {
		t.Helper()
		start := time.Now()
		var c *csipb.VolumeCondition
		for time.Since(start) < 30*time.Second {
			if c = condition(); c.GetAbnormal() == abnormal {
				return time.Since(start)
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("volume condition stayed abnormal=%v (%q) for 30s", c.GetAbnormal(), c.GetMessage())
		return 0
	}
	if c := condition(); c.GetAbnormal() {
		t.Fatalf("healthy volume reported abnormal: %q", c.GetMessage())
	}
	px.SetRefuse(true)
	px.DropAll()
	d := waitFor(true)
	t.Logf("abnormal %v after the outage began: %q", d.Round(time.Millisecond), condition().GetMessage())
	px.SetRefuse(false)
	d = waitFor(false)
	t.Logf("normal again %v after the server came back", d.Round(time.Millisecond))
	if err := os.WriteFile(filepath.Join(target, "after"), []byte("ok"), 0o644); err != nil {
		t.Errorf("write after recovery: %v", err)
	}
}

// TestNodeGetVolumeStatsUnknown: paths and volumes not mounted here are
// NOT_FOUND, as the spec asks.
func TestNodeGetVolumeStatsUnknown(t *testing.T) {
	p := startPlugin(t)
	_, params, secrets := sshdVolume(t)
	vol, _ := stage(t, p, "stats", params, secrets)
	for _, tc := range []struct{ id, path string }{{"nope", "/x"}, {vol.VolumeId, filepath.Join(p.tmpDir, "elsewhere")}} {
		_, err := p.node.NodeGetVolumeStats(ctxT(t), &csipb.NodeGetVolumeStatsRequest{VolumeId: tc.id, VolumePath: tc.path})
		if status.Code(err) != codes.NotFound {
			t.Errorf("stats of %s at %s: %v, want NotFound", tc.id, tc.path, err)
		}
	}
}

// TestConcurrentPublishes publishes, queries and unpublishes two volumes
// from parallel goroutines (run with -race: the node tables are shared).
func TestConcurrentPublishes(t *testing.T) {
	p := startPlugin(t)
	_, params, secrets := sshdVolume(t)
	done := make(chan error, 4)
	for _, name := range []string{"c1", "c2"} {
		vol, staging := stage(t, p, name, params, secrets)
		for w := range 2 {
			go func() {
				for i := range 10 {
					target := filepath.Join(p.tmpDir, "pods", name, strconv.Itoa(w), strconv.Itoa(i))
					if _, err := p.node.NodePublishVolume(ctxT(t), &csipb.NodePublishVolumeRequest{VolumeId: vol.VolumeId, StagingTargetPath: staging,
						TargetPath: target, VolumeCapability: mountCap(mnmw), VolumeContext: vol.VolumeContext}); err != nil {
						done <- err
						return
					}
					if _, err := p.node.NodeGetVolumeStats(ctxT(t), &csipb.NodeGetVolumeStatsRequest{VolumeId: vol.VolumeId, VolumePath: target}); err != nil {
						done <- err
						return
					}
					if _, err := p.node.NodeUnpublishVolume(ctxT(t), &csipb.NodeUnpublishVolumeRequest{VolumeId: vol.VolumeId, TargetPath: target}); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
		}
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
