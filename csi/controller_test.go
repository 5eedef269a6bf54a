package csi

import (
	"testing"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestCreateVolumeIdempotentAcrossRestart: the same name with the same
// options (in any spelling) is the same volume, also after the
// controller restarted with its state directory; other options are
// ALREADY_EXISTS; DeleteVolume of an unknown ID succeeds.
func TestCreateVolumeIdempotentAcrossRestart(t *testing.T) {
	p := startPlugin(t)
	_, params, secrets := sshdVolume(t)
	caps := []*csipb.VolumeCapability{mountCap(mnmw)}
	params["create_path"] = "no"
	r1, err := p.ctrl.CreateVolume(ctxT(t), &csipb.CreateVolumeRequest{Name: "v", Parameters: params, Secrets: secrets, VolumeCapabilities: caps})
	if err != nil {
		t.Fatal(err)
	}

	d2, err := New(Config{NodeID: "n", StateDir: p.state})
	if err != nil {
		t.Fatal(err)
	}
	respelled := map[string]string{"CreatePath": "false"}
	for k, v := range params {
		if k != "create_path" {
			respelled[k] = v
		}
	}
	// No secrets: a repeat is answered from the record, without
	// connecting again.
	r2, err := d2.CreateVolume(ctxT(t), &csipb.CreateVolumeRequest{Name: "v", Parameters: respelled, VolumeCapabilities: caps})
	if err != nil {
		t.Fatalf("repeat after restart: %v", err)
	}
	if r2.Volume.VolumeId != r1.Volume.VolumeId || len(r2.Volume.VolumeContext) != len(r1.Volume.VolumeContext) {
		t.Errorf("repeat gave %v, first %v", r2.Volume, r1.Volume)
	}
	respelled["uid"] = "1000"
	_, err = d2.CreateVolume(ctxT(t), &csipb.CreateVolumeRequest{Name: "v", Parameters: respelled, Secrets: secrets, VolumeCapabilities: caps})
	if status.Code(err) != codes.AlreadyExists {
		t.Errorf("same name, uid added: %v, want AlreadyExists", err)
	}
	if _, err := d2.ValidateVolumeCapabilities(ctxT(t), &csipb.ValidateVolumeCapabilitiesRequest{VolumeId: "v", VolumeCapabilities: caps}); err != nil {
		t.Errorf("ValidateVolumeCapabilities after restart: %v", err)
	}
	for _, id := range []string{"v", "never-created"} {
		if _, err := d2.DeleteVolume(ctxT(t), &csipb.DeleteVolumeRequest{VolumeId: id}); err != nil {
			t.Errorf("DeleteVolume %s: %v", id, err)
		}
	}
	if _, err := d2.ValidateVolumeCapabilities(ctxT(t), &csipb.ValidateVolumeCapabilitiesRequest{VolumeId: "v", VolumeCapabilities: caps}); status.Code(err) != codes.NotFound {
		t.Errorf("ValidateVolumeCapabilities after delete: %v, want NotFound", err)
	}
}

func TestParseEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"unix:///run/csi/csi.sock":   "/run/csi/csi.sock",
		"unix:/run/csi/csi.sock":     "/run/csi/csi.sock",
		"/run/docker/plugins/x.sock": "/run/docker/plugins/x.sock",
	} {
		if got, err := ParseEndpoint(in); err != nil || got != want {
			t.Errorf("ParseEndpoint(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"tcp://127.0.0.1:10000", "csi.sock", ""} {
		if _, err := ParseEndpoint(bad); err == nil {
			t.Errorf("ParseEndpoint(%q) accepted", bad)
		}
	}
}

func TestSplitMountFlags(t *testing.T) {
	b, opts, err := splitMountFlags([]string{"ro,nosuid", "uid=1000", "noexec", "default_permissions"})
	if err != nil {
		t.Fatal(err)
	}
	if !b.readOnly || !b.noSUID || !b.noExec || b.noDev {
		t.Errorf("bind flags %+v", b)
	}
	if opts["uid"] != "1000" || opts["ro"] != "true" || opts["default_permissions"] != "true" {
		t.Errorf("options %v", opts)
	}
	for _, bad := range []string{"sync", "uid", "vers=3"} {
		if _, _, err := splitMountFlags([]string{bad}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("flag %q: %v, want InvalidArgument", bad, err)
		}
	}
}
