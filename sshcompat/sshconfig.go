package sshcompat

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/kevinburke/ssh_config"

	"github.com/sftpfs/sftpfs/options"
)

// Local describes the local side: ssh_config's tokens and defaults.
type Local struct {
	Home     string // ~ and %d
	User     string // %u, and the login user when none is given
	Hostname string // %l
	UID, GID int    // idmap=user
}

// LoadSSHConfig reads the ssh_config file to use: file when given ("none":
// no file, returns nil), else ~/.ssh/config when it exists. A file named
// explicitly must exist. It returns the file's name for messages.
func LoadSSHConfig(file string, l Local) (*ssh_config.Config, string, error) {
	explicit := file != ""
	switch {
	case file == "none":
		return nil, "", nil
	case file == "":
		if l.Home == "" {
			return nil, "", nil
		}
		file = filepath.Join(l.Home, ".ssh", "config")
	default:
		file = expandTilde(file, l.Home)
	}
	f, err := os.Open(file)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return nil, "", nil
		}
		return nil, file, fmt.Errorf("ssh_config file %s: %v (give another with -F FILE, or -F none for no file)", file, unwrapPath(err))
	}
	defer f.Close()
	cfg, err := ssh_config.Decode(f)
	if err != nil {
		return nil, file, fmt.Errorf("ssh_config file %s: %v (fix the file, or skip it with -F none)", file, err)
	}
	return cfg, file, nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// configResult is what the ssh_config file says beyond options.
type configResult struct {
	strict   string // StrictHostKeyChecking: "", "yes" or "accept-new"
	hash     bool   // HashKnownHosts
	userKH   []string
	warnings []string
}

// applySSHConfig fills opts from cfg for the host alias as written in
// SOURCE, only where opts has no value: OpenSSH's precedence, command
// line first, then the first value obtained from the file (which the
// library's Get implements over Host blocks in file order).
func applySSHConfig(cfg *ssh_config.Config, file, alias string, opts map[string]string, l Local) (configResult, error) {
	var r configResult
	var errs []error
	get := func(key string) string {
		v, err := cfg.Get(alias, key)
		if err != nil {
			errs = append(errs, fmt.Errorf("ssh_config file %s: %s: %v", file, key, err))
		}
		return strings.TrimSpace(v)
	}
	getAll := func(key string) []string {
		v, err := cfg.GetAll(alias, key)
		if err != nil {
			errs = append(errs, fmt.Errorf("ssh_config file %s: %s: %v", file, key, err))
		}
		return v
	}
	has := func(name string) bool { _, ok := opts[name]; return ok }
	explicitIdentity := has(options.OptIdentity) || has(options.OptIdentityB64)

	if v := get("ProxyCommand"); v != "" && !strings.EqualFold(v, "none") {
		errs = append(errs, fmt.Errorf("ssh_config file %s, Host %s: %s", file, alias, proxyCommandRefused))
	}
	if v := get("HostName"); v != "" {
		opts[options.OptHost] = strings.ReplaceAll(strings.ReplaceAll(v, "%h", alias), "%%", "%")
	}
	if v := get("User"); v != "" && !has(options.OptUser) {
		opts[options.OptUser] = v
	}
	if v := get("Port"); v != "" && !has(options.OptPort) {
		opts[options.OptPort] = v
	}
	t := tokens{alias: alias, host: opts[options.OptHost], user: opts[options.OptUser], port: opts[options.OptPort], l: l}
	if t.user == "" {
		t.user = l.User
	}
	if t.port == "" {
		t.port = "22"
	}
	expandFiles := func(key string, vals []string) []string {
		var out []string
		for _, v := range vals {
			for _, f := range strings.Fields(v) {
				p, err := t.expand(f)
				if err != nil {
					errs = append(errs, fmt.Errorf("ssh_config file %s: %s %s: %v", file, key, f, err))
					continue
				}
				out = append(out, p)
			}
		}
		return out
	}
	if !has(options.OptIdentity) && !has(options.OptIdentityB64) {
		var keep []string
		for _, p := range expandFiles("IdentityFile", getAll("IdentityFile")) {
			if _, err := os.Stat(p); err != nil {
				// ssh too goes on without a missing IdentityFile.
				r.warnings = append(r.warnings, fmt.Sprintf("ssh_config IdentityFile %s: %v; skipped", p, unwrapPath(err)))
				continue
			}
			keep = append(keep, p)
		}
		if len(keep) > 0 {
			opts[options.OptIdentity] = strings.Join(keep, ",")
		}
	}
	if v := get("CertificateFile"); v != "" && !has(options.OptCertificate) {
		if p := expandFiles("CertificateFile", []string{v}); len(p) == 1 {
			opts[options.OptCertificate] = p[0]
		}
	}
	if v := get("IdentitiesOnly"); v != "" && !has(OptIdentitiesOnly) {
		opts[OptIdentitiesOnly] = v
	}
	// Known hosts: ssh reads the user files (default ~/.ssh/known_hosts)
	// and the global ones. Only when the file names either are they
	// turned into known_hosts; otherwise the defaults of options.Parse
	// (and of the backend) apply.
	userKH := expandFiles("UserKnownHostsFile", []string{get("UserKnownHostsFile")})
	globalKH := expandFiles("GlobalKnownHostsFile", []string{get("GlobalKnownHostsFile")})
	r.userKH = userKH
	if (len(userKH) > 0 || len(globalKH) > 0) && !has(options.OptKnownHosts) && !has(options.OptHostKey) {
		if len(userKH) == 0 && l.Home != "" {
			userKH = []string{filepath.Join(l.Home, ".ssh", "known_hosts")}
		}
		var keep []string
		for _, p := range append(userKH, globalKH...) {
			if p == "none" || p == "/dev/null" {
				continue
			}
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				keep = append(keep, p)
			}
		}
		if len(keep) > 0 {
			opts[options.OptKnownHosts] = strings.Join(keep, ",")
		}
	}
	if v := get("ProxyJump"); v != "" && !strings.EqualFold(v, "none") && !has(OptProxyJump) {
		hops, hopKeys, err := resolveJumpHops(cfg, v, l)
		if err != nil {
			errs = append(errs, fmt.Errorf("ssh_config file %s, Host %s: ProxyJump %s: %v", file, alias, v, err))
		}
		opts[OptProxyJump] = hops
		// Every hop authenticates with the same identities (the
		// backend has one auth set), so a hop's own IdentityFile joins
		// the list, after the target's, unless -o named identities.
		if len(hopKeys) > 0 && !explicitIdentity {
			opts[options.OptIdentity] = strings.Join(append(strings.FieldsFunc(opts[options.OptIdentity], func(r rune) bool { return r == ',' }), hopKeys...), ",")
		}
	}
	if v := get("ConnectTimeout"); v != "" && !has(options.OptConnectTimeout) {
		opts[options.OptConnectTimeout] = v
	}
	if v := get("ServerAliveInterval"); v != "" && v != "0" && !has(options.OptKeepalive) {
		opts[options.OptKeepalive] = v
	}
	if v := get("ServerAliveCountMax"); v != "" && !has(options.OptKeepaliveCount) {
		opts[options.OptKeepaliveCount] = v
	}
	if v := get("Ciphers"); v != "" && !has(options.OptCiphers) {
		if strings.ContainsAny(v[:1], "+-^") {
			r.warnings = append(r.warnings, fmt.Sprintf("ssh_config Ciphers %s: the +, - and ^ forms are not supported; using sftpfs's default ciphers (give the full list to choose)", v))
		} else {
			opts[options.OptCiphers] = v
		}
	}
	if v := get("HostKeyAlias"); v != "" {
		r.warnings = append(r.warnings, fmt.Sprintf("ssh_config HostKeyAlias %s is not supported: the host key is looked up under the host name %s", v, opts[options.OptHost]))
	}
	if v := get("StrictHostKeyChecking"); v != "" {
		// A file's "no" or "ask" (often in a Host * block) must not
		// make every mount fail: sftpfs verifies the key as with "yes".
		mode, err := strictMode(v)
		if err != nil {
			r.warnings = append(r.warnings, fmt.Sprintf("ssh_config StrictHostKeyChecking %s ignored, checking host keys as with yes: %v", v, err))
		}
		r.strict = mode
	}
	r.hash = strings.EqualFold(get("HashKnownHosts"), "yes")
	return r, errors.Join(errs...)
}

// tokens expands OpenSSH's ~ and % tokens in file names (ssh_config(5)
// TOKENS): %% %d %h %l %n %p %r %u.
type tokens struct {
	alias, host, user, port string
	l                       Local
}

func (t tokens) expand(s string) (string, error) {
	s = expandTilde(s, t.l.Home)
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return "", errors.New("ends in a lone %")
		}
		i++
		switch s[i] {
		case '%':
			b.WriteByte('%')
		case 'd':
			b.WriteString(t.l.Home)
		case 'h':
			b.WriteString(t.host)
		case 'l':
			b.WriteString(t.l.Hostname)
		case 'n':
			b.WriteString(t.alias)
		case 'p':
			b.WriteString(t.port)
		case 'r':
			b.WriteString(t.user)
		case 'u':
			b.WriteString(t.l.User)
		default:
			return "", fmt.Errorf("token %%%c is not supported (supported: %%%% %%d %%h %%l %%n %%p %%r %%u)", s[i])
		}
	}
	return b.String(), nil
}

// expandTilde expands a leading ~ or ~/ to home.
func expandTilde(p, home string) string {
	if home != "" && (p == "~" || strings.HasPrefix(p, "~/")) {
		return filepath.Join(home, p[1:])
	}
	return p
}

// resolveJumpHops rewrites a ProxyJump value so that every hop named by
// an alias of the config file gets that Host block's HostName, Port and
// User, as ssh does when it connects to the jump host; it also returns
// the existing IdentityFiles of those blocks.
func resolveJumpHops(cfg *ssh_config.Config, value string, l Local) (string, []string, error) {
	var hops, keys []string
	for _, hop := range strings.Split(value, ",") {
		hop = strings.TrimSpace(hop)
		user, hostport, hasUser := strings.Cut(hop, "@")
		if !hasUser {
			user, hostport = "", hop
		}
		host, port := hostport, ""
		if h, p, err := net.SplitHostPort(hostport); err == nil {
			host, port = h, p
		}
		if host == "" {
			return value, nil, fmt.Errorf("jump host %q has no host name", hop)
		}
		get := func(key string) string {
			v, _ := cfg.Get(host, key)
			return strings.TrimSpace(v)
		}
		name := host
		if v := get("HostName"); v != "" {
			name = strings.ReplaceAll(strings.ReplaceAll(v, "%h", host), "%%", "%")
		}
		if user == "" {
			user = get("User")
		}
		if port == "" {
			port = get("Port")
		}
		t := tokens{alias: host, host: name, user: user, port: port, l: l}
		if t.user == "" {
			t.user = l.User
		}
		if t.port == "" {
			t.port = "22"
		}
		all, _ := cfg.GetAll(host, "IdentityFile")
		for _, v := range all {
			for _, f := range strings.Fields(v) {
				if p, err := t.expand(f); err == nil {
					if _, err := os.Stat(p); err == nil {
						keys = append(keys, p)
					}
				}
			}
		}
		out := name
		if port != "" {
			out = net.JoinHostPort(name, port)
		}
		if user != "" {
			out = user + "@" + out
		}
		hops = append(hops, out)
	}
	return strings.Join(hops, ","), keys, nil
}
