# Root filesystem of the sftpfs Docker plugin.
#
# The plugin is one static Go binary (CGO_ENABLED=0) and nothing else, so
# the image starts FROM scratch and copies a binary built on the host by
# `make build` (or scripts/build-plugin.sh for another GOARCH). There is no
# golang build stage on purpose: building inside Docker would need an image
# registry to pull golang from, and the project must build on machines
# without one. scripts/build-plugin.sh normally assembles the same rootfs
# without Docker at all; `scripts/build-plugin.sh --docker-build` uses this
# file instead (docker build, docker create, docker export).
#
#   make build && docker build -t sftpfs-rootfs .
FROM scratch
ARG BINARY=bin/sftpfs
COPY ${BINARY} /sftpfs
# WORKDIR creates directories, which is the only way to make empty ones in
# a scratch image: the plugin socket directory, the propagated mount, the
# secrets mount point and /tmp.
WORKDIR /run/docker/plugins
WORKDIR /secrets
WORKDIR /mnt/volumes
WORKDIR /tmp
WORKDIR /
ENTRYPOINT ["/sftpfs", "serve"]
