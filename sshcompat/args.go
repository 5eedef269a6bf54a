package sshcompat

import (
	"errors"
	"fmt"
	"strings"
)

// Args is a parsed command line of `sftpfs mount` or of the sshfs /
// mount-helper form `sftpfs SOURCE MOUNTPOINT`.
type Args struct {
	Source     string
	Mountpoint string
	// Opts are the -o arguments in order, each still a comma-separated
	// list (see Translate).
	Opts []string
	// Port is the -p value ("" when not given).
	Port string
	// ConfigFile is the -F value: an ssh_config file, "none" for no file,
	// "" for the default (~/.ssh/config when it exists).
	ConfigFile string
	// Foreground is -f (or -d): stay attached instead of going to the
	// background once mounted.
	Foreground bool
	// Debug is -d: debug logging, in the foreground (as sshfs -d).
	Debug bool
}

// flagHelp is shown with a flag error.
const flagHelp = "flags: -o name=value[,...], -p PORT, -F SSH_CONFIG (or none), -f (foreground), -d (debug, foreground)"

// ParseArgs parses the arguments after `sftpfs mount`, or all arguments
// of the sshfs form. Flags may come before or after SOURCE and
// MOUNTPOINT, and take their value joined (-p2222) or separate (-p 2222),
// like sshfs and mount(8). -n, -s and -v, which mount(8) may pass to a
// mount helper (no mtab, sloppy, verbose), are accepted and mean nothing
// here (-v: sftpfs already reports errors). help reports -h.
func ParseArgs(args []string) (a Args, help bool, err error) {
	var pos []string
	value := func(i *int, flag string) (string, error) {
		arg := args[*i]
		if len(arg) > len(flag) {
			return arg[len(flag):], nil
		}
		if *i+1 >= len(args) {
			return "", fmt.Errorf("%s needs a value; %s", flag, flagHelp)
		}
		*i++
		return args[*i], nil
	}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--":
			pos = append(pos, args[i+1:]...)
			i = len(args)
		case arg == "-h" || arg == "-help" || arg == "--help":
			return a, true, nil
		case strings.HasPrefix(arg, "-o"):
			v, err := value(&i, "-o")
			if err != nil {
				return a, false, err
			}
			a.Opts = append(a.Opts, v)
		case strings.HasPrefix(arg, "-p"):
			v, err := value(&i, "-p")
			if err != nil {
				return a, false, err
			}
			if a.Port != "" && a.Port != v {
				return a, false, fmt.Errorf("-p is given twice (%s and %s); give it once", a.Port, v)
			}
			a.Port = v
		case strings.HasPrefix(arg, "-F"):
			v, err := value(&i, "-F")
			if err != nil {
				return a, false, err
			}
			a.ConfigFile = v
		case arg == "-f":
			a.Foreground = true
		case arg == "-d" || arg == "--debug":
			a.Debug, a.Foreground = true, true
		case arg == "-n" || arg == "-s" || arg == "-v":
			// mount(8) helper flags; see the doc comment.
		case arg == "-C":
			return a, false, errors.New("-C (compression) is not supported: sftpfs does not compress; remove it")
		case arg == "-1":
			return a, false, errors.New("-1 (SSH protocol 1) is not supported; remove it")
		case strings.HasPrefix(arg, "-") && arg != "-":
			return a, false, fmt.Errorf("unknown flag %q; %s", arg, flagHelp)
		default:
			pos = append(pos, arg)
		}
	}
	if len(pos) != 2 {
		return a, false, fmt.Errorf("want SOURCE and MOUNTPOINT, got %d argument(s)", len(pos))
	}
	a.Source, a.Mountpoint = pos[0], pos[1]
	if strings.HasPrefix(a.Mountpoint, "/dev/fd/") {
		// mount.fuse3 -o drop_privileges mounts itself and passes the
		// FUSE device instead of the mountpoint.
		return a, false, fmt.Errorf("mountpoint %s is a file descriptor, as mount.fuse3 passes with drop_privileges, which sftpfs does not support; remove drop_privileges", a.Mountpoint)
	}
	return a, false, nil
}

// LooksLikeSource reports whether arg, the first argument of `sftpfs`, is
// the start of the sshfs / mount-helper form rather than a subcommand:
// a flag, or a SOURCE ([user@]host:[path], local:/dir or a directory).
// mount.fuse3 runs `sftpfs SOURCE MOUNTPOINT -o OPTIONS`.
func LooksLikeSource(arg string) bool {
	return strings.HasPrefix(arg, "-") || strings.ContainsAny(arg, ":/")
}
