package csi

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sftpfs/sftpfs/options"
)

// Secret keys accepted in a CSI secrets map (Swarm `--secret KEY=SECRET`,
// Kubernetes secret refs). Each is file content, never a file name.
const (
	SecretIdentity   = "identity"   // private key file content
	SecretPassword   = "password"   // login password
	SecretPassphrase = "passphrase" // passphrase of an encrypted identity
	SecretKnownHosts = "known_hosts"
	SecretHostKey    = "hostkey" // pinned host keys, as the hostkey option
	// secretSSHPrivateKey is the key of Kubernetes' kubernetes.io/ssh-auth
	// secret type, accepted as identity so such a secret works as is.
	secretSSHPrivateKey = "ssh-privatekey"
)

// secretOption maps a secret key to the file option of the option table
// that takes its content (through a memfd, see memSecrets).
func secretOption() map[string]string {
	return map[string]string{
		SecretIdentity:      options.OptIdentity,
		secretSSHPrivateKey: options.OptIdentity,
		SecretPassword:      options.OptPasswordFile,
		SecretPassphrase:    options.OptPassphraseFile,
		SecretKnownHosts:    options.OptKnownHosts,
	}
}

// forbiddenParams are options that carry or name secret material. In
// parameters or volume_context they would be stored by the orchestrator
// and shown to anyone who can inspect the volume, and file names mean
// nothing here (the CSI plugin has no secrets directory): they must come
// through the secrets map. The value is the secret key to use instead.
func forbiddenParams() map[string]string {
	return map[string]string{
		options.OptIdentity:       SecretIdentity,
		options.OptIdentityB64:    SecretIdentity,
		options.OptPassword:       SecretPassword,
		options.OptPasswordFile:   SecretPassword,
		options.OptPassphraseFile: SecretPassphrase,
		options.OptKnownHosts:     SecretKnownHosts,
		options.OptCertificate:    "",
		options.OptSSHAgent:       "",
	}
}

// orchestratorPrefix marks keys that Kubernetes adds to parameters and
// volume contexts for itself (pod info, PVC name); they are not options.
const orchestratorPrefix = "csi.storage.k8s.io/"

// fdDir is where the memfd secrets are reachable by path; file options
// resolve their (numeric) names there.
const fdDir = "/proc/self/fd"

// volumeOptions turns parameters or a volume context into option-table
// options: orchestrator keys are dropped, secret-bearing options refused
// with a pointer to the secrets map. The values are not secret.
func volumeOptions(params map[string]string) (map[string]string, error) {
	out := map[string]string{}
	forbidden := forbiddenParams()
	var errs []string
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.HasPrefix(k, orchestratorPrefix) {
			continue
		}
		if o, ok := options.Lookup(k); ok {
			if instead, bad := forbidden[o.Name]; bad {
				if instead == "" {
					errs = append(errs, fmt.Sprintf("option %q is not supported by the CSI plugin", k))
				} else {
					errs = append(errs, fmt.Sprintf("option %q may not be a volume parameter: parameters are stored and shown in clear; pass the content as the secret %q (docker volume create --secret %s=SECRET, or a Kubernetes secret with key %s)", k, instead, instead, instead))
				}
				continue
			}
		}
		out[k] = params[k]
	}
	if len(errs) > 0 {
		return nil, status.Error(codes.InvalidArgument, strings.Join(errs, "; "))
	}
	return out, nil
}

// memSecrets holds the secrets of one volume in anonymous memory files
// (memfd_create): the backend reads key, password, passphrase and
// known_hosts files at every (re)connect, and knownhosts only reads files,
// so each secret becomes a file that exists nowhere on disk, is reachable
// only as /proc/self/fd/N by this process (and root), and disappears when
// closed.
type memSecrets struct {
	files []*os.File
	// names maps "/proc/self/fd/N" to the secret key, to name the secret
	// rather than the descriptor in error messages.
	names map[string]string
}

// newMemSecrets checks the secrets map and adds the options that use it
// to opts (a copy is returned). On error nothing stays open.
func newMemSecrets(secrets map[string]string, opts map[string]string) (*memSecrets, map[string]string, error) {
	ms := &memSecrets{names: map[string]string{}}
	out := make(map[string]string, len(opts)+len(secrets))
	for k, v := range opts {
		out[k] = v
	}
	fileOpt := secretOption()
	keys := make([]string, 0, len(secrets))
	for k := range secrets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	used := map[string]string{}
	for _, k := range keys {
		v := secrets[k]
		if k == SecretHostKey {
			hk := strings.TrimSpace(v)
			if prev := strings.TrimSpace(out[options.OptHostKey]); prev != "" {
				hk = prev + "," + hk
			}
			out[options.OptHostKey] = hk
			continue
		}
		opt, ok := fileOpt[k]
		if !ok {
			ms.Close()
			return nil, nil, status.Errorf(codes.InvalidArgument, "unknown secret key %q: use %s", k,
				strings.Join([]string{SecretIdentity, SecretPassword, SecretPassphrase, SecretKnownHosts, SecretHostKey}, ", "))
		}
		if prev, dup := used[opt]; dup {
			ms.Close()
			return nil, nil, status.Errorf(codes.InvalidArgument, "secrets %q and %q both give %s; keep one", prev, k, opt)
		}
		used[opt] = k
		if v == "" {
			ms.Close()
			return nil, nil, status.Errorf(codes.InvalidArgument, "secret %q is empty", k)
		}
		name, err := ms.add(k, []byte(v))
		if err != nil {
			ms.Close()
			return nil, nil, status.Errorf(codes.Internal, "holding secret %q in memory: %v", k, err)
		}
		out[opt] = name
	}
	return ms, out, nil
}

// add stores data in a new memfd and returns its name relative to fdDir.
func (ms *memSecrets) add(key string, data []byte) (string, error) {
	fd, err := unix.MemfdCreate("sftpfs-"+key, unix.MFD_CLOEXEC)
	if err != nil {
		return "", err
	}
	f := os.NewFile(uintptr(fd), "memfd:"+key)
	ms.files = append(ms.files, f)
	if _, err := f.Write(data); err != nil {
		return "", errors.New("writing the memory file failed")
	}
	name := fmt.Sprint(fd)
	ms.names[fdDir+"/"+name] = key
	return name, nil
}

// explain rewrites error text so that a memfd path reads as the secret it
// holds ("the identity secret"), which is what the user gave.
func (ms *memSecrets) explain(msg string) string {
	paths := make([]string, 0, len(ms.names))
	for p := range ms.names {
		paths = append(paths, p)
	}
	// Longest first: /proc/self/fd/7 is a prefix of /proc/self/fd/71.
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	for _, p := range paths {
		msg = strings.ReplaceAll(msg, p, "the "+ms.names[p]+" secret")
	}
	return msg
}

// Close releases the memory files. Safe on nil.
func (ms *memSecrets) Close() {
	if ms == nil {
		return
	}
	for _, f := range ms.files {
		f.Close()
	}
	ms.files = nil
}
