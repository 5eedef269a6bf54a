package csi

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sftpfs/sftpfs/mounter"
	"github.com/sftpfs/sftpfs/options"
)

// parseVolume builds the mount configuration of a volume from its
// (non-secret) options and the CSI secrets map. The returned memSecrets
// must stay open as long as the backend may reconnect, and be closed
// after. Errors are gRPC statuses without secret content.
func (d *Driver) parseVolume(name string, opts, secrets map[string]string) (*options.Config, *memSecrets, error) {
	ms, all, err := newMemSecrets(secrets, opts)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := options.Parse(all, options.Env{Scope: options.ScopeVolume, SecretsDir: fdDir})
	if err != nil {
		ms.Close()
		return nil, nil, status.Error(codes.InvalidArgument, ms.explain(err.Error()))
	}
	// As for Docker volumes (driver/real.go): unless uid or gid is set,
	// files are presented as owned by root, the user the plugin mounts
	// as. Remote numeric owners mean nothing in containers, and copy-up
	// or fsGroup chowns would fail for a non-root SFTP account.
	canon, err := options.Canonical(all)
	if err != nil {
		ms.Close()
		return nil, nil, status.Error(codes.InvalidArgument, ms.explain(err.Error()))
	}
	if _, ok := canon[options.OptUID]; !ok {
		cfg.FS.UID = 0
	}
	if _, ok := canon[options.OptGID]; !ok {
		cfg.FS.GID = 0
	}
	cfg.FS.ServeOnly = !d.cfg.SelfAccess
	for _, w := range cfg.Warnings {
		d.log.Warn(w, "volume", name, "remote", cfg.Remote())
	}
	return cfg, ms, nil
}

// check connects and authenticates once, as `docker volume create` does
// for the classic plugin, so a volume that can never work fails at create.
func (d *Driver) check(ctx context.Context, name string, opts, secrets map[string]string) error {
	cfg, ms, err := d.parseVolume(name, opts, secrets)
	if err != nil {
		return err
	}
	defer ms.Close()
	ctx, cancel := context.WithTimeout(ctx, d.cfg.CheckTimeout)
	defer cancel()
	b, err := mounter.OpenBackend(ctx, cfg, d.log.With("volume", name))
	if err != nil {
		return connectError(ms, err)
	}
	return b.Close()
}

// connectError maps a failure to reach or log in to the server. The
// backend's messages name options and files, never secret content.
func connectError(ms *memSecrets, err error) error {
	code := codes.FailedPrecondition
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		code = codes.Unavailable
	}
	return status.Error(code, ms.explain(err.Error()))
}
