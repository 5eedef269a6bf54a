package csi

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/sftpfs/sftpfs/options"
)

// TestDockerPluginConfig checks plugin/csi/config.json against what
// Docker's cluster volumes need (moby docs/cluster_volumes.md): both CSI
// interface types, /data/published as the propagated mount (Swarm's
// hard-coded publish path), CSI_ENDPOINT naming the interface socket in
// the plugin socket directory, FUSE and CAP_SYS_ADMIN, `sftpfs csi`.
func TestDockerPluginConfig(t *testing.T) {
	b, err := os.ReadFile("../plugin/csi/config.json")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Entrypoint []string
		Interface  struct {
			Socket string
			Types  []string
		}
		Network         struct{ Type string }
		PropagatedMount string
		Linux           struct {
			Capabilities []string
			Devices      []struct{ Path string }
		}
		Env []struct{ Name, Value string }
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("config.json: %v", err)
	}
	if !slices.Equal(c.Entrypoint, []string{"/sftpfs", "csi"}) {
		t.Errorf("entrypoint %v, want /sftpfs csi", c.Entrypoint)
	}
	for _, typ := range []string{"docker.csicontroller/1.0", "docker.csinode/1.0"} {
		if !slices.Contains(c.Interface.Types, typ) {
			t.Errorf("interface.types %v lacks %s", c.Interface.Types, typ)
		}
	}
	if c.PropagatedMount != "/data/published" {
		t.Errorf("propagatedMount %q, want /data/published (where Swarm publishes)", c.PropagatedMount)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	ep, ok := env["CSI_ENDPOINT"]
	if !ok {
		t.Fatal("no CSI_ENDPOINT in env")
	}
	sock, err := ParseEndpoint(ep)
	if err != nil {
		t.Errorf("CSI_ENDPOINT: %v", err)
	}
	if want := "/run/docker/plugins/" + c.Interface.Socket; c.Interface.Socket == "" || sock != want {
		t.Errorf("CSI_ENDPOINT %q is not the interface socket %q in /run/docker/plugins", ep, c.Interface.Socket)
	}
	if !slices.Contains(c.Linux.Capabilities, "CAP_SYS_ADMIN") {
		t.Errorf("capabilities %v lack CAP_SYS_ADMIN (mount)", c.Linux.Capabilities)
	}
	if len(c.Linux.Devices) != 1 || c.Linux.Devices[0].Path != "/dev/fuse" {
		t.Errorf("devices %v, want /dev/fuse", c.Linux.Devices)
	}
	if c.Network.Type != "host" {
		t.Errorf("network %q, want host (the plugin dials SFTP servers)", c.Network.Type)
	}
}

// k8sObject is the part of a manifest the checks read.
type k8sObject struct {
	Kind     string
	Metadata struct{ Name string }
	// CSIDriver
	Provisioner string
	Parameters  map[string]string
	StringData  map[string]string
	Spec        struct {
		AttachRequired *bool
		FSGroupPolicy  string
		CSI            *struct {
			Driver             string
			VolumeHandle       string
			VolumeAttributes   map[string]string
			NodeStageSecretRef *struct{ Name string }
		}
		Template struct {
			Spec struct {
				Containers []k8sContainer
				Volumes    []struct {
					Name     string
					HostPath *struct{ Path string }
					EmptyDir *struct{}
				}
			}
		}
	}
}

type k8sContainer struct {
	Name            string
	Command, Args   []string
	SecurityContext *struct{ Privileged bool }
	Env             []struct{ Name, Value string }
	VolumeMounts    []struct {
		Name, MountPath, MountPropagation string
	}
}

func (c k8sContainer) env(name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func (c k8sContainer) arg(prefix string) string {
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, prefix+"="); ok {
			return v
		}
	}
	return ""
}

// mountOf returns the volume name mounted at the directory holding path.
func (c k8sContainer) mountOf(path string) (string, string) {
	best, dir := "", ""
	for _, m := range c.VolumeMounts {
		if strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") && len(m.MountPath) > len(dir) {
			best, dir = m.Name, m.MountPath
		}
	}
	return best, dir
}

func loadManifests(t *testing.T) map[string][]k8sObject {
	t.Helper()
	files, _ := filepath.Glob("../deploy/kubernetes/*.yaml")
	ex, _ := filepath.Glob("../deploy/kubernetes/examples/*.yaml")
	files = append(files, ex...)
	if len(files) == 0 {
		t.Fatal("no manifests in deploy/kubernetes")
	}
	byKind := map[string][]k8sObject{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range strings.Split(string(b), "\n---\n") {
			var o k8sObject
			if err := yaml.UnmarshalStrict([]byte(doc), &map[string]any{}); err != nil {
				t.Errorf("%s document %d: %v", f, i+1, err)
				continue
			}
			if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
				t.Errorf("%s document %d: %v", f, i+1, err)
				continue
			}
			if o.Kind == "" || o.Metadata.Name == "" {
				t.Errorf("%s document %d has no kind or name", f, i+1)
			}
			byKind[o.Kind] = append(byKind[o.Kind], o)
		}
	}
	return byKind
}

func containerNamed(t *testing.T, o k8sObject, name string) k8sContainer {
	t.Helper()
	for _, c := range o.Spec.Template.Spec.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("%s %s has no container %q", o.Kind, o.Metadata.Name, name)
	return k8sContainer{}
}

// checkSocket: the sidecar's --csi-address and the driver's CSI_ENDPOINT
// name the same socket, in a directory both mount from the same volume.
func checkSocket(t *testing.T, o k8sObject, sidecar, driver k8sContainer) string {
	t.Helper()
	addr := sidecar.arg("--csi-address")
	ep, err := ParseEndpoint(driver.env("CSI_ENDPOINT"))
	if err != nil {
		t.Errorf("%s: driver CSI_ENDPOINT: %v", o.Metadata.Name, err)
	}
	if addr == "" || addr != ep {
		t.Errorf("%s: %s --csi-address %q, driver CSI_ENDPOINT %q: not the same socket", o.Metadata.Name, sidecar.Name, addr, ep)
	}
	sv, sdir := sidecar.mountOf(addr)
	dv, ddir := driver.mountOf(ep)
	if sv == "" || sv != dv || sdir != ddir {
		t.Errorf("%s: socket directory mounted from volume %q at %q in %s, %q at %q in the driver", o.Metadata.Name, sv, sdir, sidecar.Name, dv, ddir)
	}
	if !slices.Equal(driver.Command, []string{"/sftpfs", "csi"}) {
		t.Errorf("%s: driver command %v, want /sftpfs csi", o.Metadata.Name, driver.Command)
	}
	return sv
}

// TestKubernetesManifests checks deploy/kubernetes: the kinds, that every
// driver name agrees with DefaultDriverName, that sidecars and driver
// agree on the socket, that the registrar registers the socket at the host
// path the driver container really listens on, and that examples use only
// options and secret keys the plugin accepts.
func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t)
	for _, kind := range []string{"CSIDriver", "DaemonSet", "Deployment", "StorageClass", "PersistentVolume", "PersistentVolumeClaim", "Secret"} {
		if len(m[kind]) == 0 {
			t.Errorf("no %s in deploy/kubernetes", kind)
		}
	}
	for _, d := range m["CSIDriver"] {
		if d.Metadata.Name != DefaultDriverName {
			t.Errorf("CSIDriver %q, want %q", d.Metadata.Name, DefaultDriverName)
		}
		if d.Spec.AttachRequired == nil || *d.Spec.AttachRequired {
			t.Errorf("CSIDriver attachRequired must be false: the plugin has no ControllerPublish")
		}
	}
	for _, sc := range m["StorageClass"] {
		if sc.Provisioner != DefaultDriverName {
			t.Errorf("StorageClass %s provisioner %q, want %q", sc.Metadata.Name, sc.Provisioner, DefaultDriverName)
		}
		if _, err := volumeOptions(sc.Parameters); err != nil {
			t.Errorf("StorageClass %s parameters: %v", sc.Metadata.Name, err)
		}
		if _, err := options.Canonical(withoutPrefix(sc.Parameters)); err != nil {
			t.Errorf("StorageClass %s parameters: %v", sc.Metadata.Name, err)
		}
		if sc.Parameters[orchestratorPrefix+"node-stage-secret-name"] == "" {
			t.Errorf("StorageClass %s names no node-stage secret: the plugin mounts at NodeStageVolume", sc.Metadata.Name)
		}
	}
	for _, pv := range m["PersistentVolume"] {
		c := pv.Spec.CSI
		if c == nil || c.Driver != DefaultDriverName {
			t.Errorf("PersistentVolume %s: csi.driver is not %q", pv.Metadata.Name, DefaultDriverName)
			continue
		}
		if _, err := volumeOptions(c.VolumeAttributes); err != nil {
			t.Errorf("PersistentVolume %s volumeAttributes: %v", pv.Metadata.Name, err)
		}
		if _, err := options.Canonical(c.VolumeAttributes); err != nil {
			t.Errorf("PersistentVolume %s volumeAttributes: %v", pv.Metadata.Name, err)
		}
		if c.NodeStageSecretRef == nil {
			t.Errorf("PersistentVolume %s has no nodeStageSecretRef: the plugin mounts at NodeStageVolume", pv.Metadata.Name)
		}
	}
	accepted := secretOption()
	for _, s := range m["Secret"] {
		for k := range s.StringData {
			if _, ok := accepted[k]; !ok && k != SecretHostKey {
				t.Errorf("Secret %s key %q is not a secret key the plugin accepts", s.Metadata.Name, k)
			}
		}
	}

	for _, dep := range m["Deployment"] {
		checkSocket(t, dep, containerNamed(t, dep, "csi-provisioner"), containerNamed(t, dep, "sftpfs"))
	}
	for _, ds := range m["DaemonSet"] {
		reg, drv := containerNamed(t, ds, "node-driver-registrar"), containerNamed(t, ds, "sftpfs")
		vol := checkSocket(t, ds, reg, drv)
		// The kubelet dials the registration path on the host: it must be
		// the host directory behind the socket volume, named after the
		// driver as the kubelet expects.
		ep, _ := ParseEndpoint(drv.env("CSI_ENDPOINT"))
		_, dir := drv.mountOf(ep)
		hostDir := ""
		for _, v := range ds.Spec.Template.Spec.Volumes {
			if v.Name == vol && v.HostPath != nil {
				hostDir = v.HostPath.Path
			}
		}
		want := filepath.Join(hostDir, strings.TrimPrefix(ep, dir))
		if got := reg.arg("--kubelet-registration-path"); hostDir == "" || got != want {
			t.Errorf("DaemonSet %s: --kubelet-registration-path %q, but the driver's socket is %q on the host", ds.Metadata.Name, got, want)
		}
		if !strings.Contains(hostDir, DefaultDriverName) {
			t.Errorf("DaemonSet %s: plugin directory %q is not named after the driver", ds.Metadata.Name, hostDir)
		}
		if drv.SecurityContext == nil || !drv.SecurityContext.Privileged {
			t.Errorf("DaemonSet %s: the driver must be privileged to mount FUSE", ds.Metadata.Name)
		}
		bidi := false
		for _, vm := range drv.VolumeMounts {
			if vm.MountPath == "/var/lib/kubelet" && vm.MountPropagation == "Bidirectional" {
				bidi = true
			}
		}
		if !bidi {
			t.Errorf("DaemonSet %s: /var/lib/kubelet must be mounted with Bidirectional propagation so pods see the mounts", ds.Metadata.Name)
		}
	}
}

func withoutPrefix(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if !strings.HasPrefix(k, orchestratorPrefix) {
			out[k] = v
		}
	}
	return out
}
