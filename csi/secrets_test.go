package csi

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/crypto/ssh"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sftpfs/sftpfs/internal/testenv"
	"github.com/sftpfs/sftpfs/sftpserver"
)

func randSecret(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// memfds counts this process's open secret memory files.
func memfds(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && strings.HasPrefix(l, "/memfd:sftpfs-") {
			n++
		}
	}
	return n
}

// TestSecretsOnlyFromSecretsMap drives every path that handles a secret —
// CreateVolume with good and wrong passwords, an encrypted key with good
// and wrong passphrases, bad known_hosts content, a misspelled secret key,
// secrets smuggled into parameters, a conflicting re-create, stage,
// publish, stats, unpublish, unstage — over gRPC with debug logging, and
// checks that no secret appears in a response (volume_context included),
// an error, the log or a file the plugin wrote; that secrets are refused
// as parameters; and that their memory files are gone after unstage.
func TestSecretsOnlyFromSecretsMap(t *testing.T) {
	p := startPlugin(t)
	password, wrongPassword := randSecret("pw-"), randSecret("wrongpw-")
	passphrase, wrongPassphrase := randSecret("pp-"), randSecret("wrongpp-")
	khMarker := randSecret("kh-")

	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	blk, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	encKey := string(pem.EncodeToMemory(blk))
	keyBody := strings.Split(encKey, "\n")[2]
	secrets := []string{password, wrongPassword, passphrase, wrongPassphrase, keyBody, khMarker}

	srv, err := sftpserver.New(sftpserver.Config{Root: t.TempDir(), Password: []byte(password), AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); srv.Close(); <-served })
	host, port, _ := net.SplitHostPort(srv.Addr())
	fp := ssh.FingerprintSHA256(srv.HostKey())
	params := map[string]string{"host": host, "port": port, "user": "u", "path": ".", "debug": "true"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range params {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	caps := []*csipb.VolumeCapability{mountCap(mnmw)}

	var out strings.Builder // every response and error, as a CO would see them
	create := func(name string, params, sec map[string]string) (*csipb.CreateVolumeResponse, error) {
		r, err := p.ctrl.CreateVolume(ctxT(t), &csipb.CreateVolumeRequest{Name: name, Parameters: params, Secrets: sec, VolumeCapabilities: caps})
		fmt.Fprintf(&out, "%v %v\n", r, err)
		return r, err
	}
	mustFail := func(name string, want codes.Code, params, sec map[string]string) {
		t.Helper()
		if _, err := create(name, params, sec); status.Code(err) != want {
			t.Errorf("CreateVolume %s: %v, want %v", name, err, want)
		}
	}
	mustFail("wrong-password", codes.FailedPrecondition, params, map[string]string{"password": wrongPassword, "hostkey": fp})
	mustFail("wrong-passphrase", codes.FailedPrecondition, params, map[string]string{"identity": encKey, "passphrase": wrongPassphrase, "hostkey": fp})
	mustFail("bad-known-hosts", codes.FailedPrecondition, params, map[string]string{"password": password, "known_hosts": "[" + host + "]:" + port + " ssh-ed25519 " + khMarker + "\n"})
	mustFail("misspelled-key", codes.InvalidArgument, params, map[string]string{"pasword": password, "hostkey": fp})
	mustFail("password-param", codes.InvalidArgument, with("password", password, "hostkey", fp), nil)
	mustFail("passphrase-param", codes.InvalidArgument, with("passphrase_file", passphrase, "hostkey", fp), nil)
	mustFail("no-secrets", codes.InvalidArgument, with("hostkey", fp), nil)

	good, err := create("good", params, map[string]string{"password": password, "hostkey": fp})
	if err != nil {
		t.Fatalf("CreateVolume good: %v", err)
	}
	mustFail("good", codes.AlreadyExists, with("uid", "1000"), map[string]string{"password": wrongPassword, "hostkey": fp})
	keyed, err := create("keyed", params, map[string]string{"identity": encKey, "passphrase": passphrase, "hostkey": fp})
	if err != nil {
		t.Fatalf("CreateVolume keyed: %v", err)
	}
	for _, v := range []*csipb.Volume{good.Volume, keyed.Volume} {
		for k := range v.VolumeContext {
			switch k {
			case "password", "identity", "passphrase", "known_hosts", "hostkey", "identity_b64", "password_file", "passphrase_file":
				t.Errorf("volume_context of %s has %q", v.VolumeId, k)
			}
		}
	}

	before := memfds(t)
	nodeSecrets := map[string]string{"identity": encKey, "passphrase": passphrase, "hostkey": fp}
	// A wrong passphrase at stage fails without leaking either.
	if _, err := p.node.NodeStageVolume(ctxT(t), &csipb.NodeStageVolumeRequest{VolumeId: "keyed", StagingTargetPath: filepath.Join(p.tmpDir, "st-bad"),
		VolumeCapability: mountCap(mnmw), VolumeContext: keyed.Volume.VolumeContext,
		Secrets: map[string]string{"identity": encKey, "passphrase": wrongPassphrase, "hostkey": fp}}); err == nil {
		t.Errorf("NodeStageVolume with a wrong passphrase succeeded")
	} else {
		fmt.Fprintln(&out, err)
	}
	staging, target := filepath.Join(p.tmpDir, "st"), filepath.Join(p.tmpDir, "pods", "keyed")
	if _, err := p.node.NodeStageVolume(ctxT(t), &csipb.NodeStageVolumeRequest{VolumeId: "keyed", StagingTargetPath: staging,
		VolumeCapability: mountCap(mnmw), VolumeContext: keyed.Volume.VolumeContext, Secrets: nodeSecrets}); err != nil {
		t.Fatalf("NodeStageVolume: %v", err)
	}
	if n := memfds(t); n <= before {
		t.Errorf("no secret memory file open while staged (%d before, %d now)", before, n)
	}
	publish(t, p, keyed.Volume, staging, target, false)
	if err := os.WriteFile(filepath.Join(target, "f"), []byte("x"), 0o644); err != nil {
		t.Errorf("write through the published volume: %v", err)
	}
	st, err := p.node.NodeGetVolumeStats(ctxT(t), &csipb.NodeGetVolumeStatsRequest{VolumeId: "keyed", VolumePath: target})
	fmt.Fprintf(&out, "%v %v\n", st, err)
	if _, err := p.node.NodeUnpublishVolume(ctxT(t), &csipb.NodeUnpublishVolumeRequest{VolumeId: "keyed", TargetPath: target}); err != nil {
		t.Errorf("NodeUnpublishVolume: %v", err)
	}
	if _, err := p.node.NodeUnstageVolume(ctxT(t), &csipb.NodeUnstageVolumeRequest{VolumeId: "keyed", StagingTargetPath: staging}); err != nil {
		t.Errorf("NodeUnstageVolume: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for memfds(t) > before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := memfds(t); n > before {
		t.Errorf("%d secret memory files still open after unstage (%d before stage)", n, before)
	}
	for _, name := range []string{"good", "keyed"} {
		if _, err := p.ctrl.DeleteVolume(ctxT(t), &csipb.DeleteVolumeRequest{VolumeId: name}); err != nil {
			t.Errorf("DeleteVolume %s: %v", name, err)
		}
	}

	logs := p.logs.String()
	if !strings.Contains(logs, "level=DEBUG") {
		t.Errorf("no debug lines in the plugin log; the test did not run at the most verbose level")
	}
	if !strings.Contains(out.String(), "passphrase") || !strings.Contains(out.String(), "pasword") {
		t.Errorf("errors do not name the secret at fault:\n%s", out.String())
	}
	for i, s := range secrets {
		if f := testenv.Leaks(out.String(), s); len(f) > 0 {
			t.Errorf("secret #%d in a response or error (%v):\n%s", i, f, out.String())
		}
		if f := testenv.Leaks(logs, s); len(f) > 0 {
			t.Errorf("secret #%d in the plugin log (%v)", i, f)
		}
	}
	_ = filepath.WalkDir(p.tmpDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		b, _ := os.ReadFile(path)
		for i, s := range secrets {
			if f := testenv.Leaks(string(b), s); len(f) > 0 {
				t.Errorf("%s contains secret #%d (%v)", path, i, f)
			}
		}
		return nil
	})
	t.Logf("errors as the CO sees them:\n%s", out.String())
}
