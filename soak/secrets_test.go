package soak

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/sftpfs/sftpfs/internal/testenv"
	"github.com/sftpfs/sftpfs/options"
	"github.com/sftpfs/sftpfs/sftpserver"
)

func randSecret(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// TestSecretsNeverLeak runs every path of the plugin that handles a
// password, passphrase or key — Create with good and wrong inline
// passwords, password files, an encrypted key with a wrong passphrase,
// Mount, Get/List/Path (Status), Unmount, Remove — with debug logging on,
// and checks that no secret appears in an API response, the plugin's log,
// or any file other than the 0600 state file; and that printing a parsed
// configuration (what a panic or a careless log line would show) hides
// them too.
func TestSecretsNeverLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("secrets test builds and runs the plugin; skipped in -short mode")
	}
	testenv.RequireRoot(t)
	testenv.RequireFUSE(t)
	password, wrongPassword := randSecret("pw-"), randSecret("wrongpw-")
	passphrase, wrongPassphrase := randSecret("pp-"), randSecret("wrongpp-")
	secrets := []string{password, wrongPassword, passphrase, wrongPassphrase}

	srv, err := sftpserver.New(sftpserver.Config{Root: t.TempDir(), Password: []byte(password)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); srv.Close(); <-served })
	host, portStr, _ := net.SplitHostPort(srv.Addr())
	fp := ssh.FingerprintSHA256(srv.HostKey())

	// An encrypted key, whose private half is secret material too.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	blk, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	secretsDir, base := t.TempDir(), t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(secretsDir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("pw", password+"\n")
	write("wrongpw", wrongPassword+"\n")
	write("key", string(pem.EncodeToMemory(blk)))
	write("wrongpp", wrongPassphrase+"\n")
	write("pp", passphrase+"\n")
	plainBlk, _ := ssh.MarshalPrivateKey(priv, "")
	keyB64 := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(plainBlk))
	// The unencrypted key's base64 is a secret as a whole; its PEM body
	// lines are what a leak would show.
	keyBody := strings.Split(string(pem.EncodeToMemory(plainBlk)), "\n")[2]
	secrets = append(secrets, keyB64, keyBody)

	bin := buildBinary(t)
	logs := &tailBuffer{max: 100000}
	mountRoot, stateDir := filepath.Join(base, "mnt"), filepath.Join(base, "state")
	p := startPlugin(t, bin, filepath.Join(base, "sock"), mountRoot, stateDir, secretsDir, logs)
	t.Cleanup(func() {
		p.kill(t)
		for _, mp := range mountsBelow(mountRoot) {
			_ = unixDetach(mp)
		}
	})

	var responses strings.Builder
	callAll := func(path string, req any) error {
		out, err := p.call(path, req)
		b, _ := json.Marshal(out)
		responses.Write(b)
		if err != nil {
			responses.WriteString(err.Error())
		}
		return err
	}
	common := map[string]string{"host": host, "port": portStr, "user": "u", "hostkey": fp, "path": ".", "debug": "true"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range common {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	mustFail := func(name string, o map[string]string) {
		if err := callAll("/VolumeDriver.Create", map[string]any{"Name": name, "Opts": o}); err == nil {
			t.Errorf("Create %s succeeded with bad credentials", name)
		}
	}
	mustFail("wrong-inline", with("password", wrongPassword))
	mustFail("wrong-file", with("password_file", "wrongpw"))
	mustFail("wrong-passphrase", with("identity", "key", "passphrase_file", "wrongpp"))
	mustFail("key-not-authorized", with("identity", "key", "passphrase_file", "pp"))
	mustFail("b64-not-authorized", with("identity_b64", keyB64))
	mustFail("bad-option", with("password", password, "no_such_option", "x"))
	if err := callAll("/VolumeDriver.Create", map[string]any{"Name": "good", "Opts": with("password", password)}); err != nil {
		t.Fatalf("Create good: %v", err)
	}
	if err := callAll("/VolumeDriver.Create", map[string]any{"Name": "goodfile", "Opts": with("password_file", "pw")}); err != nil {
		t.Fatalf("Create goodfile: %v", err)
	}
	// Re-create with a different password: the conflict error must not
	// echo either.
	_ = callAll("/VolumeDriver.Create", map[string]any{"Name": "good", "Opts": with("password", wrongPassword)})
	if err := callAll("/VolumeDriver.Mount", map[string]any{"Name": "good", "ID": "c1"}); err != nil {
		t.Fatalf("Mount: %v", err)
	}
	for _, path := range []string{"/VolumeDriver.Get", "/VolumeDriver.Path"} {
		_ = callAll(path, map[string]any{"Name": "good"})
	}
	_ = callAll("/VolumeDriver.List", struct{}{})
	_ = callAll("/VolumeDriver.Capabilities", struct{}{})
	if err := callAll("/VolumeDriver.Unmount", map[string]any{"Name": "good", "ID": "c1"}); err != nil {
		t.Errorf("Unmount: %v", err)
	}
	_ = callAll("/VolumeDriver.Remove", map[string]any{"Name": "goodfile"})
	if !strings.Contains(responses.String(), fp) {
		t.Errorf("responses lack the host key fingerprint; the API calls did not do what this test expects:\n%s", responses.String())
	}
	p.kill(t)

	for _, s := range secrets {
		if f := testenv.Leaks(responses.String(), s); len(f) > 0 {
			t.Errorf("plugin API responses contain a secret (%v)", f)
		}
		if f := testenv.Leaks(logs.String(), s); len(f) > 0 {
			t.Errorf("plugin debug log contains a secret (%v)", f)
		}
	}
	if !strings.Contains(logs.String(), "level=DEBUG") {
		t.Errorf("no debug lines in the plugin log; the test did not run at the most verbose level")
	}
	// Files: only the 0600 state (and its backup) in a 0700 directory.
	stateHasSecret := false
	for _, root := range []string{base, "/tmp/sftpfs-never"} {
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return nil
			}
			for _, s := range secrets {
				if len(testenv.Leaks(string(b), s)) == 0 {
					continue
				}
				st, _ := os.Stat(path)
				dst, _ := os.Stat(filepath.Dir(path))
				if filepath.Dir(path) != stateDir || st.Mode().Perm() != 0o600 || dst.Mode().Perm() != 0o700 {
					t.Errorf("%s (mode %v, dir mode %v) contains a secret; only the 0600 state in a 0700 directory may", path, st.Mode().Perm(), dst.Mode().Perm())
				}
				stateHasSecret = true
			}
			return nil
		})
	}
	if !stateHasSecret {
		t.Logf("note: the state file does not hold the inline password (stored elsewhere or not at all)")
	}

	// Printing a parsed configuration, as a panic value or a careless
	// log attribute would, must not show the secrets.
	cfg, err := options.Parse(map[string]string{"host": host, "port": portStr, "user": "u", "hostkey": fp,
		"password": password, "identity_b64": keyB64}, options.Env{Scope: options.ScopeVolume, SecretsDir: secretsDir})
	if err != nil {
		t.Fatalf("options.Parse: %v", err)
	}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("cfg", "cfg", cfg, "sftp", cfg.SFTP)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("cfg", "cfg", cfg, "sftp", cfg.SFTP)
	printed := fmt.Sprintf("%v %+v %#v %v %+v %#v", cfg, cfg, cfg, *cfg, cfg.SFTP, cfg.SFTP) + logged.String()
	for _, s := range []string{password, string(cfg.SFTP.IdentityInline[0])} {
		if f := testenv.Leaks(printed, s); len(f) > 0 {
			t.Errorf("printing the parsed configuration shows a secret (%v)", f)
		}
	}
}
