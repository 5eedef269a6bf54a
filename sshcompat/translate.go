package sshcompat

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sftpfs/sftpfs/options"
)

// Option names of the other side of issue 12 (backend/sftp): ssh_config
// and sshfs names map to them. Until the option table has them, Parse
// reports them as unknown options, naming them.
const (
	OptProxyJump      = "proxy_jump"
	OptIdentitiesOnly = "identities_only"
)

// Plan is what a command line means for sftpfs.
type Plan struct {
	// Opts are sftpfs options by canonical name (unknown names as
	// written, for options.Parse to report). They were given explicitly,
	// so they beat the ssh_config file.
	Opts map[string]string
	// SSHConfig is the ssh_config file to read: "" for the default,
	// "none" for none (-F or -o ssh_config).
	SSHConfig string
	// StrictHostKeyChecking is "" (not given), "yes" or "accept-new".
	StrictHostKeyChecking string
	// Foreground and Debug are -f and -d (or -o foreground, -o debug).
	Foreground bool
	Debug      bool
	// Warnings are said once and do not stop the mount.
	Warnings []string
}

// Caller is who runs the command: idmap=user presents files as owned by
// this uid and gid.
type Caller struct{ UID, GID int }

// generic are mount(8)'s filesystem-independent options that only tell
// mount(8), systemd or the kernel something, or that name sftpfs's own
// behaviour, with why each is accepted. Keys are lower case.
func generic() map[string]string {
	return map[string]string{
		"defaults": "mount(8): the default options",
		"auto":     "mount(8): mounted by mount -a",
		"noauto":   "mount(8): not mounted by mount -a",
		"nofail":   "mount(8)/systemd: boot does not fail if the mount fails",
		"_netdev":  "mount(8)/systemd: wait for the network before mounting",
		"user":     "mount(8): who may mount it (not the login user: use user=NAME@ in SOURCE)",
		"users":    "mount(8): who may mount it",
		"nouser":   "mount(8): only root may mount it",
		"owner":    "mount(8): the device owner may mount it",
		"group":    "mount(8): the device group may mount it",
		"nodev":    "sftpfs always mounts with nodev",
		"nosuid":   "sftpfs always mounts with nosuid",
		"async":    "writes are asynchronous until flush or fsync (the default)",
		"atime":    "access times are the server's",
		"noatime":  "access times are the server's; sftpfs never writes them on read",
		"relatime": "access times are the server's; sftpfs never writes them on read",
	}
}

// Translate maps the flags and -o items of a to sftpfs options and
// directives. Repeated options must agree (options.Merge); an option given
// in -o and by a flag (-p and -o port) likewise. Every refused item says
// why and what to use instead.
func Translate(a Args, caller Caller) (Plan, error) {
	p := Plan{Opts: map[string]string{}, Foreground: a.Foreground, Debug: a.Debug}
	var errs []error
	set := func(name, value string) {
		if err := options.Merge(p.Opts, name, value); err != nil {
			errs = append(errs, err)
		}
	}
	if a.Port != "" {
		set(options.OptPort, a.Port)
	}
	if a.ConfigFile != "" {
		p.SSHConfig = a.ConfigFile
	}
	if a.Debug {
		set(options.OptDebug, "true")
	}
	for _, arg := range a.Opts {
		items, err := options.SplitArg(arg)
		if err != nil {
			return p, err
		}
		for _, item := range items {
			if strings.TrimSpace(item) == "" {
				continue
			}
			k, v, hasValue := strings.Cut(item, "=")
			k = strings.TrimSpace(k)
			if k == "" {
				errs = append(errs, fmt.Errorf("option %q has no name; write key=value", item))
				continue
			}
			if err := p.item(k, strings.TrimSpace(v), hasValue, caller, set); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return p, errors.Join(errs...)
}

// item handles one -o item; options.Merge reports conflicts through set.
func (p *Plan) item(k, v string, hasValue bool, caller Caller, set func(name, value string)) error {
	lk := strings.ToLower(k)
	if _, ok := generic()[lk]; ok && !hasValue {
		return nil
	}
	if strings.HasPrefix(lk, "x-") || strings.HasPrefix(lk, "comment=") || lk == "comment" {
		return nil // x-systemd.*, x-mount.*, comment=: for systemd and mount(8)
	}
	switch normalizeName(k) {
	case "rw":
		set(options.OptRO, "false")
	case "dev", "suid":
		// fstab's "defaults" makes mount.fuse3 pass dev,suid, so they
		// cannot be refused; sftpfs still mounts nodev,nosuid: files on
		// a server must not become devices or set-uid programs here.
	case "exec":
		set(options.OptNoExec, "false")
	case "foreground":
		p.Foreground = true
	case "reconnect":
		// sshfs's reconnect: sftpfs always reconnects.
	case "delayconnect":
		return fmt.Errorf("option %q is not supported: sftpfs connects when mounting, so a bad host or key is reported at once; remove it", k)
	case "hostname":
		set(options.OptHost, v)
	case "certificatefile":
		set(options.OptCertificate, v)
	case "sshconfig":
		if v == "" {
			return errors.New("option ssh_config needs a file name, or none for no file: -o ssh_config=FILE")
		}
		if p.SSHConfig != "" && p.SSHConfig != v {
			return fmt.Errorf("the ssh_config file is given twice (%q and %q); give -F or -o ssh_config once", p.SSHConfig, v)
		}
		p.SSHConfig = v
	case "serveraliveinterval":
		// ssh's ServerAliveInterval=0 means no keepalive; sftpfs needs
		// keepalives to notice a dead server, so 0 keeps the default.
		if n, err := strconv.Atoi(v); err == nil && n == 0 {
			p.Warnings = append(p.Warnings, "ServerAliveInterval=0 (no keepalive) is not supported: sftpfs needs keepalives to notice a dead server; using keepalive's default")
			return nil
		}
		set(options.OptKeepalive, v)
	case "serveralivecountmax":
		set(options.OptKeepaliveCount, v)
	case "userknownhostsfile", "globalknownhostsfile":
		set(options.OptKnownHosts, strings.Join(strings.Fields(v), ","))
	case "identitiesonly":
		set(OptIdentitiesOnly, v)
	case "proxyjump":
		if !strings.EqualFold(v, "none") {
			set(OptProxyJump, v)
		}
	case "proxycommand":
		if !strings.EqualFold(v, "none") {
			return errors.New(proxyCommandRefused)
		}
	case "stricthostkeychecking":
		mode, err := strictMode(v)
		if err != nil {
			return err
		}
		if p.StrictHostKeyChecking != "" && p.StrictHostKeyChecking != mode {
			return fmt.Errorf("StrictHostKeyChecking is given twice (%s and %s); give it once", p.StrictHostKeyChecking, mode)
		}
		p.StrictHostKeyChecking = mode
	case "idmap":
		switch strings.ToLower(v) {
		case "none":
		case "user":
			set(options.OptUID, strconv.Itoa(caller.UID))
			set(options.OptGID, strconv.Itoa(caller.GID))
		default:
			return fmt.Errorf("option idmap=%s is not supported: sftpfs presents all files as owned by one uid and gid; use idmap=user (your uid and gid) or uid=N,gid=N", v)
		}
	case "sshfsdebug":
		set(options.OptDebug, "true")
	case "batchmode":
		// sftpfs never prompts, which is what BatchMode=yes asks for.
		if b, err := strconv.ParseBool(yesNo(v)); err == nil && !b {
			return errors.New("BatchMode=no is not supported: sftpfs never prompts for passwords or keys; use password_file or identity")
		}
	case "compression":
		if b, err := strconv.ParseBool(yesNo(v)); err != nil || b {
			return fmt.Errorf("option %q: sftpfs does not compress; remove it (Compression=no is accepted)", k)
		}
	case "maxconns":
		// sshfs 3.7's connection count is sftpfs's conns (which keeps
		// metadata on the first connection, where sshfs spreads it).
		set(options.OptConns, v)
	case "bigwrites":
		// Large writes are always on (max_write).
	case "containsymlinks", "transformsymlinks":
		// sshfs rewrites absolute targets to stay inside the mount:
		// sftpfs's symlinks=contain (the default of sftpfs mount).
		set(options.OptSymlinks, "contain")
	case "nocontainsymlinks":
		set(options.OptSymlinks, "keep")
	case "hashknownhosts":
		return errors.New("HashKnownHosts is read from the ssh_config file only; put it there")
	default:
		n := normalizeName(k)
		if why, ok := sshfsRefused()[n]; ok {
			return fmt.Errorf("sshfs option %q is not supported: %s", k, why)
		}
		if strings.HasPrefix(n, "dcache") {
			return fmt.Errorf("sshfs option %q is not supported: sftpfs uses the kernel cache; tune attr_timeout and entry_timeout instead", k)
		}
		set(k, v)
	}
	return nil
}

// sshfsRefused are sshfs options that sftpfs has no use for and that the
// option table does not explain already, with the reason and what to do.
// Keys are normalized names.
func sshfsRefused() map[string]string {
	return map[string]string{
		"sshfssync":       "writes reach the server as the kernel sends them; call fsync (or close the file) to wait for them",
		"noreadahead":     "sftpfs reads ahead only for sequential readers; remove it",
		"syncreaddir":     "a listing is one request stream in sftpfs; remove it",
		"directio":        "remove it (attr_timeout=0 makes size changes by other clients show at once)",
		"disablehardlink": "remove it",
		"nocheckroot":     "sftpfs checks the remote directory when mounting; create_path=true creates a missing one",
		"passive":         "sftpfs speaks SSH itself; remove it",
		"uidfile":         "sftpfs presents one owner for all files: use uid and gid (or idmap=user)",
		"gidfile":         "sftpfs presents one owner for all files: use uid and gid (or idmap=user)",
		"nomap":           "sftpfs presents one owner for all files: use uid and gid (or idmap=user)",
		"noforget":        "remove it",
		"remember":        "remove it",
		"modules":         "FUSE modules are a libfuse feature; remove it",
		"norofdflush":     "remove it",
		"acattrtimeout":   "use attr_timeout instead",
		"sshprotocol":     "only SSH 2 exists; remove it",
	}
}

const proxyCommandRefused = "ProxyCommand is not supported: sftpfs never runs other programs (it speaks SSH itself, and the same binary runs as root in the Docker plugin); for a jump host use -o ProxyJump=[user@]jumphost[:port] (option proxy_jump)"

// strictMode maps StrictHostKeyChecking values to "yes" or "accept-new".
func strictMode(v string) (string, error) {
	switch strings.ToLower(v) {
	case "yes", "true", "on":
		return "yes", nil
	case "accept-new":
		return "accept-new", nil
	case "no", "off", "false":
		return "", errors.New("StrictHostKeyChecking=no is not supported: it accepts changed keys too; use StrictHostKeyChecking=accept-new to record a first-seen key, or pin the key with hostkey=SHA256:<fingerprint>")
	case "ask":
		return "", errors.New("StrictHostKeyChecking=ask is not supported: sftpfs never prompts; use StrictHostKeyChecking=accept-new, or add the key to known_hosts (`ssh-keyscan -p PORT HOST >> ~/.ssh/known_hosts`, then check it)")
	}
	return "", fmt.Errorf("StrictHostKeyChecking=%s: want yes or accept-new", v)
}

// yesNo turns ssh's yes/no into a strconv.ParseBool value.
func yesNo(v string) string {
	switch strings.ToLower(v) {
	case "yes", "":
		return "true"
	case "no":
		return "false"
	}
	return v
}

// normalizeName is options' name matching: lower case without - and _.
func normalizeName(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' {
			return -1
		}
		return r
	}, strings.ToLower(name))
}
