package options

import (
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary option strings (as `-o` arguments) through
// ParseList, Parse, Canonical and Redact: none may panic, and no error may
// echo an inline password.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"host=h,user=u,identity=k,hostkey=SHA256:AAAA",
		"sshcmd=user@host:/srv/data,port=2222",
		"sshcmd=[::1]:/p",
		"sshcmd=a@b@c:d:e",
		"sshcmd=@:",
		"local=/tmp,ro",
		`hostkey=ssh-ed25519 AAAA\,SHA256:x`,
		"password=p\\,w,password_file=f",
		"IdentityFile=/root/.ssh/id_rsa,allow_other",
		"reconnect,ServerAliveInterval=15",
		"umask=0777,uid=-1,max_write=99999999999999999999",
		"keepalive=1e308,op_timeout=-1",
		"identity_b64=!!!!",
		",,=,\\",
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseList([]string{s})
		if err != nil {
			return
		}
		const pw = "zz-secret-zz"
		if _, ok := m["password"]; ok {
			m["password"] = pw
		}
		for _, env := range []Env{{Scope: ScopeVolume, SecretsDir: dir}, {Scope: ScopeCLI, BaseDir: dir, Home: dir}} {
			cfg, err := Parse(m, env)
			if err != nil && strings.Contains(err.Error(), pw) {
				t.Fatalf("error leaks the password: %v", err)
			}
			if err == nil {
				_ = cfg.Remote()
			}
		}
		_, _ = Canonical(m)
		for k, v := range Redact(m) {
			if o, ok := Lookup(k); ok && o.Secret && v != Redacted {
				t.Fatalf("Redact kept %s", k)
			}
		}
	})
}
