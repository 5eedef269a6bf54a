package sftp

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	ok := Config{Host: "h", User: "u", IdentityFiles: []string{"/k"}, KnownHostsFiles: []string{"/kh"}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no host", func(c *Config) { c.Host = "" }, "host is required"},
		{"no user", func(c *Config) { c.User = "" }, "user is required"},
		{"bad port", func(c *Config) { c.Port = 70000 }, "port 70000 is out of range"},
		{"no auth", func(c *Config) { c.IdentityFiles = nil }, "no authentication configured"},
		{"no host key check", func(c *Config) { c.KnownHostsFiles = nil }, "known_hosts=FILE or hostkey="},
		{"insecure plus pins", func(c *Config) { c.InsecureIgnoreHostKey = true }, "insecure_ignore_host_key conflicts"},
		{"bad pin", func(c *Config) { c.HostKeys = []string{"SHA256:short"} }, "not a valid SHA256 fingerprint"},
		{"bad cipher", func(c *Config) { c.Ciphers = []string{"rot13"} }, `ciphers: "rot13" is not supported`},
		{"password twice", func(c *Config) { c.PasswordFile = "/p"; c.Password = []byte("hunter2-secret") }, "keep only password_file"},
		{"cert without key", func(c *Config) { c.IdentityFiles = nil; c.PasswordFile = "/p"; c.CertificateFile = "/c" }, "certificate is set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			c.IdentityFiles = append([]string(nil), ok.IdentityFiles...)
			tc.mutate(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v; want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2-secret") {
				t.Fatalf("error contains the password: %v", err)
			}
		})
	}
}

func TestParsePinnedKey(t *testing.T) {
	for _, s := range []string{
		"SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl comment",
		"[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
	} {
		if _, err := parsePinnedKey(s); err != nil {
			t.Errorf("parsePinnedKey(%q): %v", s, err)
		}
	}
	for _, s := range []string{"SHA256:", "md5:aa:bb", "ssh-ed25519 notbase64"} {
		if _, err := parsePinnedKey(s); err == nil {
			t.Errorf("parsePinnedKey(%q) accepted", s)
		}
	}
}

func TestRemote(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{User: "u", Host: "h", Path: "/srv"}, "u@h:22/srv"},
		{Config{User: "u", Host: "h", Port: 2222, Path: "data"}, "u@h:2222/~/data"},
		{Config{User: "u", Host: "h"}, "u@h:22"},
	} {
		if got := tc.c.Remote(); got != tc.want {
			t.Errorf("Remote() = %q; want %q", got, tc.want)
		}
	}
}
