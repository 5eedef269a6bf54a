#!/usr/bin/env bash
# Makes this machine ready for `make test` and `make demo`, or says exactly
# what is missing.
#
# As root on Debian/Ubuntu it installs the missing packages, staticcheck,
# creates /run/sshd, loads the fuse module and starts dockerd if it is not
# running. Otherwise it only reports what is missing and how to get it.
# It is idempotent and quick when everything is present. Exit status: 0
# when everything required is there, 1 otherwise.
set -euo pipefail

STATICCHECK_VERSION=v0.8.2
DOCKERD_LOG=/var/log/sftpfs-dockerd.log

# Debian package => a command (or file) that shows it is installed.
declare -A PKG_CHECK=(
	[docker.io]=dockerd
	[openssh-server]=/usr/sbin/sshd
	[openssh-client]=ssh-keygen
	[fuse3]=fusermount3
	[sshfs]=sshfs
	[busybox-static]=/bin/busybox
	# docker-compose (v1) drives e2e/edge_test.go's `down -v` case.
	[docker-compose]=docker-compose
	# docker-registry (distribution 2.8) is the local registry that
	# e2e/upgrade_test.go and fleet_test.go push the plugin to for
	# `docker plugin upgrade`, and that scripts/build-plugin.sh uses to
	# replace an installed plugin in place; each runs its own
	# `docker-registry serve` on a free loopback port.
	[docker-registry]=docker-registry
	[git]=git
	[make]=make
	# scripts/lab.sh (run by `make bench-smoke`): Python drives its
	# reads, perf counts the mount's wake-ups.
	[python3]=python3
	[linux-perf]=perf
	[iproute2]=ip
	[iptables]=iptables
	[ca-certificates]=/etc/ssl/certs/ca-certificates.crt
)

say() { printf 'deps: %s\n' "$*"; }

have() {
	case "$1" in
	/*) [ -e "$1" ] ;;
	# sbin is often not on a normal user's PATH.
	*) PATH="$PATH:/usr/sbin:/sbin" command -v "$1" >/dev/null 2>&1 ;;
	esac
}

is_root() { [ "$(id -u)" = 0 ]; }
is_debian() { [ -r /etc/debian_version ] && have apt-get; }

missing_pkgs=()
for pkg in "${!PKG_CHECK[@]}"; do
	have "${PKG_CHECK[$pkg]}" || missing_pkgs+=("$pkg")
done

problems=()

if ((${#missing_pkgs[@]})); then
	if is_root && is_debian; then
		say "installing: ${missing_pkgs[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}" >/dev/null
		# The package enables and starts a registry service on :5000; the
		# tests start their own when they need one, so do not leave a
		# registry listening (only when this run installed it).
		if [[ " ${missing_pkgs[*]} " == *" docker-registry "* ]]; then
			if have systemctl && [ -d /run/systemd/system ]; then
				systemctl disable --now docker-registry >/dev/null 2>&1 || true
			elif have service; then
				service docker-registry stop >/dev/null 2>&1 || true
			fi
		fi
	else
		problems+=("missing packages: ${missing_pkgs[*]} (Debian/Ubuntu: sudo apt-get install ${missing_pkgs[*]})")
	fi
fi

if ! have go; then
	problems+=("missing Go 1.26+: install it from https://go.dev/dl/ and put it on PATH")
else
	gobin=$(go env GOPATH)/bin
	if ! have staticcheck && [ ! -x "$gobin/staticcheck" ]; then
		say "installing staticcheck $STATICCHECK_VERSION"
		go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" ||
			problems+=("cannot install staticcheck: run go install honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION")
	fi
fi

if is_root; then
	# sshd refuses to start without its privilege separation directory.
	mkdir -p /run/sshd
	chmod 0755 /run/sshd
	if [ ! -e /dev/fuse ]; then
		modprobe fuse 2>/dev/null || true
	fi
fi
if [ ! -e /dev/fuse ]; then
	problems+=("/dev/fuse is missing: load the module (modprobe fuse) or, in a container, run it with --device /dev/fuse --cap-add SYS_ADMIN")
fi

# Docker: the engine must run and the docker CLI must talk to it. A newer
# CLI (e.g. /usr/local/bin/docker) negotiates the API version down to an
# older Debian engine; check that it actually does.
if have docker && have dockerd; then
	if ! docker info >/dev/null 2>&1; then
		if is_root; then
			say "starting dockerd (log: $DOCKERD_LOG)"
			# dockerd outlives this script: close every inherited descriptor
			# above 2 so it cannot keep, e.g., a caller's flock(1) lock held.
			setsid bash -c 'for fd in /proc/$$/fd/*; do n=${fd##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-"; done; exec dockerd' \
				>"$DOCKERD_LOG" 2>&1 </dev/null &
			for _ in $(seq 60); do
				docker info >/dev/null 2>&1 && break
				sleep 1
			done
			if ! docker info >/dev/null 2>&1; then
				problems+=("dockerd did not come up within 60s; see $DOCKERD_LOG")
				tail -n 20 "$DOCKERD_LOG" >&2 || true
			fi
		else
			problems+=("the Docker engine is not running (or not reachable as $(id -un)): start it (sudo systemctl start docker) and make sure you may use it")
		fi
	fi
	if docker info >/dev/null 2>&1 && ! docker version >/dev/null 2>&1; then
		problems+=("$(command -v docker) cannot talk to the engine: $(docker version 2>&1 | tail -n 1); put the distribution's client first on PATH or set DOCKER_API_VERSION")
	fi
fi

if ((${#problems[@]})); then
	for p in "${problems[@]}"; do
		say "MISSING: $p" >&2
	done
	exit 1
fi
say "ok: everything the tests need is present"
