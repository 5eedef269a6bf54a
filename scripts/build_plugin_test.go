package scripts

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeUname puts a `uname` printing machine for -m first on PATH, so the
// scripts believe they run on that architecture.
func fakeUname(t *testing.T, machine string) []string {
	t.Helper()
	dir := t.TempDir()
	script := "#!/bin/sh\nif [ \"$1\" = -m ]; then echo " + machine + "; else exec /bin/uname \"$@\"; fi\n"
	if err := os.WriteFile(filepath.Join(dir, "uname"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + dir + ":" + os.Getenv("PATH")}
	for _, kv := range os.Environ() {
		// The scripts must not take the architecture from these.
		if !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "GOARCH=") && !strings.HasPrefix(kv, "PLUGIN_ARCH=") {
			env = append(env, kv)
		}
	}
	return env
}

func TestHostArch(t *testing.T) {
	for machine, want := range map[string]string{"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"} {
		cmd := exec.Command("bash", "-c", ". ./plugin-lib.sh && sftpfs_host_arch")
		cmd.Env = fakeUname(t, machine)
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != want {
			t.Errorf("uname -m %s: sftpfs_host_arch = %q, %v; want %s", machine, out, err, want)
		}
	}
	cmd := exec.Command("bash", "-c", ". ./plugin-lib.sh && sftpfs_host_arch")
	cmd.Env = fakeUname(t, "riscv64")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "riscv64") || !strings.Contains(string(out), "PLUGIN_ARCH=") {
		t.Errorf("uname -m riscv64: %q, %v; want an error naming the machine and PLUGIN_ARCH", out, err)
	}
}

// The Makefile passes PLUGIN_ARCH only when it is given, so the script's
// detection decides (it used to force amd64).
func TestMakefileLeavesArchToScript(t *testing.T) {
	for arg, want := range map[string]string{"": "scripts/build-plugin.sh \n", "PLUGIN_ARCH=arm64": "scripts/build-plugin.sh arm64\n"} {
		args := []string{"-s", "-n", "-C", "..", "plugin", "VERSION=x"}
		if arg != "" {
			args = append(args, arg)
		}
		cmd := exec.Command("make", args...)
		cmd.Env = fakeUname(t, "aarch64")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.HasSuffix(string(out), want) {
			t.Errorf("make -n plugin %s: %q, %v; want it to end with %q", arg, out, err, want)
		}
	}
}

// On an arm64 machine (uname -m aarch64) with no PLUGIN_ARCH, the script
// builds arm64, as the machine's own plugin (not the cross-built, never
// enabled sftpfs:latest-ARCH), cross-compiled into a static aarch64 ELF.
func TestBuildPluginDetectsArm64(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("go not on PATH: %v", err)
	}
	tree := filepath.Join(t.TempDir(), "tree")
	cmd := exec.Command("./build-plugin.sh", "--no-install")
	cmd.Env = append(fakeUname(t, "aarch64"), "PLUGIN_BUILD_DIR="+tree, "VERSION=arch-test")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("build-plugin.sh --no-install on a fake aarch64: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "sftpfs-linux-arm64") || strings.Contains(string(out), "not enabled") {
		t.Fatalf("build-plugin.sh on aarch64 did not build the machine's arm64 plugin:\n%s", out)
	}
	f, err := elf.Open(filepath.Join(tree, "rootfs", "sftpfs"))
	if err != nil {
		t.Fatalf("the plugin's binary: %v", err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 || f.Class != elf.ELFCLASS64 {
		t.Fatalf("the plugin's binary is %v %v, want EM_AARCH64 ELFCLASS64", f.Machine, f.Class)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Fatalf("the plugin's binary is dynamically linked (%v): the scratch rootfs has no libc", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("the plugin's binary needs %v", libs)
	}
	if b, err := os.ReadFile(filepath.Join(tree, "rootfs", "etc", "sftpfs-build")); err != nil || !strings.Contains(string(b), "linux/arm64") {
		t.Fatalf("rootfs/etc/sftpfs-build: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(tree, "config.json")); err != nil {
		t.Fatal(err)
	}
}
