package sshcompat

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/sftpfs/sftpfs/options"
)

// Resolved is a command line turned into sftpfs options and directives.
type Resolved struct {
	// Opts are the options for options.Parse.
	Opts map[string]string
	// Local reports a local directory source (no SSH, no ssh_config).
	Local bool
	// Foreground and Debug: see Plan.
	Foreground, Debug bool
	// AcceptNew is StrictHostKeyChecking=accept-new (from -o, else from
	// the ssh_config file): record a first-seen host key in KnownHosts.
	AcceptNew bool
	// KnownHosts is the user's known_hosts file, where accept-new records
	// keys: the first known_hosts / UserKnownHostsFile given, else
	// ~/.ssh/known_hosts.
	KnownHosts string
	// HashKnownHosts is ssh_config's HashKnownHosts: record keys under a
	// hashed host name.
	HashKnownHosts bool
	// SSHConfigFile is the ssh_config file read ("" for none).
	SSHConfigFile string
	Warnings      []string
}

// Resolve turns parsed arguments into options: flags and -o items
// (Translate), then SOURCE, then the ssh_config file for options still
// unset. It reads only the ssh_config file and checks that config-named
// identity files exist.
func Resolve(a Args, l Local) (*Resolved, error) {
	plan, err := Translate(a, Caller{UID: l.UID, GID: l.GID})
	if err != nil {
		return nil, err
	}
	r := &Resolved{Opts: plan.Opts, Foreground: plan.Foreground, Debug: plan.Debug, Warnings: plan.Warnings}
	src, err := SourceOptions(a.Source)
	if err != nil {
		return nil, err
	}
	for k, v := range src {
		if _, dup := r.Opts[k]; dup {
			return nil, fmt.Errorf("SOURCE %q already gives %s; remove -o %s", a.Source, k, k)
		}
		r.Opts[k] = v
	}
	if _, ok := src[options.OptLocal]; ok {
		r.Local = true
		if plan.StrictHostKeyChecking != "" {
			return nil, errors.New("StrictHostKeyChecking is for SSH sources, not a local directory; remove it")
		}
		return r, nil
	}
	strict := plan.StrictHostKeyChecking
	explicitKH := r.Opts[options.OptKnownHosts]
	cfg, file, err := LoadSSHConfig(plan.SSHConfig, l)
	if err != nil {
		return nil, err
	}
	var userKH []string
	if cfg != nil {
		r.SSHConfigFile = file
		cr, err := applySSHConfig(cfg, file, src[options.OptHost], r.Opts, l)
		if err != nil {
			return nil, err
		}
		r.Warnings = append(r.Warnings, cr.warnings...)
		r.HashKnownHosts = cr.hash
		userKH = cr.userKH
		if strict == "" {
			strict = cr.strict
		}
	}
	r.AcceptNew = strict == "accept-new"
	// The user's file: never a global one, which the config may have
	// added to known_hosts.
	defaultKH := ""
	if l.Home != "" {
		defaultKH = filepath.Join(l.Home, ".ssh", "known_hosts")
	}
	switch {
	case explicitKH != "":
		first, _, _ := strings.Cut(explicitKH, ",")
		r.KnownHosts = expandTilde(strings.TrimSpace(first), l.Home)
	case len(userKH) > 0:
		r.KnownHosts = userKH[0]
	default:
		r.KnownHosts = defaultKH
	}
	if !r.AcceptNew {
		return r, nil
	}
	if r.KnownHosts == "" {
		return nil, errors.New("StrictHostKeyChecking=accept-new needs a known_hosts file to record the key in: give -o UserKnownHostsFile=FILE")
	}
	// The file accept-new writes must also be one the check reads, even
	// if it does not exist yet (applySSHConfig keeps existing files only).
	var list []string
	if v := r.Opts[options.OptKnownHosts]; v != "" {
		list = strings.Split(v, ",")
	}
	inList := false
	for _, f := range list {
		inList = inList || expandTilde(strings.TrimSpace(f), l.Home) == r.KnownHosts
	}
	if !inList && !(len(list) == 0 && r.KnownHosts == defaultKH) {
		r.Opts[options.OptKnownHosts] = strings.Join(append([]string{r.KnownHosts}, list...), ",")
	}
	return r, nil
}

// SourceOptions turns SOURCE into options: local=DIR for local:DIR or a
// directory path, else host, user and path from [user@]host:[path].
func SourceOptions(source string) (map[string]string, error) {
	if dir, ok := strings.CutPrefix(source, "local:"); ok {
		if dir == "" {
			return nil, errors.New("local: needs a directory, like local:/srv/data")
		}
		return map[string]string{options.OptLocal: dir}, nil
	}
	if filepath.IsAbs(source) || source == "." || strings.HasPrefix(source, "./") || strings.HasPrefix(source, "../") {
		return map[string]string{options.OptLocal: source}, nil
	}
	if !strings.Contains(source, ":") {
		return nil, fmt.Errorf("SOURCE %q is neither [user@]host:[path] nor local:/dir (add a colon for a host: %s:)", source, source)
	}
	u, h, p, err := options.ParseRemote(source)
	if err != nil {
		return nil, fmt.Errorf("SOURCE: %v", err)
	}
	m := map[string]string{options.OptHost: h}
	if u != "" {
		m[options.OptUser] = u
	}
	if p != "" {
		m[options.OptPath] = p
	}
	return m, nil
}
