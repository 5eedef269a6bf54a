# sftpfs build, test and packaging. `make help` lists the targets.

VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GO          ?= go
# Empty: scripts/build-plugin.sh builds for this machine (uname -m).
PLUGIN_ARCH ?=
# make plugin-push: REGISTRY/NAME:TAG; pushed as TAG-amd64, TAG-arm64 and TAG (amd64).
PLUGIN_REF  ?=
LDFLAGS     := -s -w -X main.version=$(VERSION)
# LOCK prefixes the heavy commands; on a shared machine use
# LOCK="flock /tmp/sftpfs-cpu.lock" so that only one runs at a time.
LOCK        ?=
STATICCHECK ?= $(shell command -v staticcheck || echo $$($(GO) env GOPATH)/bin/staticcheck)

.PHONY: help build install test test-unit test-e2e e2e-swarm soak fuzz-smoke test-short lint deps plugin plugin-push plugin-rm plugin-csi demo clean bench bench-smoke

help:
	@echo "make build       static binary bin/sftpfs (VERSION=$(VERSION))"
	@echo "make install     bin/sftpfs to $(PREFIX)/bin (for mount -t fuse.sftpfs and fstab; DESTDIR, PREFIX)"
	@echo "make test        install deps (scripts/deps.sh), lint, then all tests (FUSE, OpenSSH, Docker)"
	@echo "make test-unit   unit, FUSE and OpenSSH tests (-race), no Docker"
	@echo "make test-e2e    end-to-end tests on the local Docker Engine (plugin, Swarm)"
	@echo "make e2e-swarm   3-node Swarm end-to-end tests alone (root, dockerd, netns; ~2 min)"
	@echo "make soak        fault soak + plugin crash + driver load + secrets checks (SOAK_DURATION=60s)"
	@echo "make fuzz-smoke  every fuzz target for a fixed number of inputs"
	@echo "make test-short  go test -short ./... with what is installed (no deps step)"
	@echo "make lint        gofmt, go vet, staticcheck"
	@echo "make deps        scripts/deps.sh: install/start what the tests need (root on Debian)"
	@echo "make plugin      build and install the Docker plugin, or upgrade it in place keeping volumes (PLUGIN_ARCH=amd64|arm64; default this machine's)"
	@echo "make plugin-push PLUGIN_REF=registry/sftpfs:TAG  build amd64+arm64, push TAG-amd64, TAG-arm64 and TAG (= amd64)"
	@echo "make plugin-rm   remove the plugin; refuses while it has volumes, secrets or state (FORCE=1 tells and removes)"
	@echo "make plugin-csi  build and install the CSI plugin sftpfs-csi for Swarm cluster volumes (docs/csi.md)"
	@echo "make demo        plugin + SFTP server + volume + two containers (scripts/demo.sh)"
	@echo "make bench       sftpfs vs sshfs vs raw OpenSSH sftp (BENCH_FLAGS=\"-rounds 5 -record docs/perf.md\"; root)"
	@echo "make bench-smoke the same with tiny sizes in seconds, and scripts/lab.sh's experiments; fails if any contender fails (CI)"

build:
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/sftpfs ./cmd/sftpfs

# mount -t fuse.sftpfs (and fstab, systemd mount units) runs fuse3's
# /sbin/mount.fuse3, which runs `sftpfs SOURCE MOUNTPOINT -o OPTIONS`
# from /usr/local/bin or /usr/bin: no /sbin/mount.fuse.sftpfs link needed.
PREFIX  ?= /usr/local
DESTDIR ?=
install: build
	install -D -m 0755 bin/sftpfs $(DESTDIR)$(PREFIX)/bin/sftpfs

deps:
	scripts/deps.sh

# The Docker end-to-end packages share one dockerd (and restart it), so
# they run after the unit tests, one package at a time.
UNIT_PKGS = $(shell $(GO) list ./... | grep -v '/e2e')

test: deps lint test-unit fuzz-smoke test-e2e bench-smoke

test-unit:
	$(LOCK) $(GO) test -race -count=1 -timeout 30m $(UNIT_PKGS)

test-e2e:
	SFTPFS_E2E_SWARM=1 $(LOCK) $(GO) test -race -count=1 -p 1 -timeout 30m ./e2e/...

# The 3-node Swarm scenarios alone (root, dockerd, network namespaces).
e2e-swarm:
	SFTPFS_E2E_SWARM=1 $(LOCK) $(GO) test -count=1 -timeout 10m -v ./e2e/swarm/

test-short:
	$(LOCK) $(GO) test -short -count=1 -timeout 20m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(LOCK) $(GO) vet ./...
	$(LOCK) $(STATICCHECK) ./...

# The fault soak, crash, load and secrets checks of soak/ with a longer
# budget than the 20 s that make test-unit gives the soak (docs/reliability.md).
soak:
	SOAK_DURATION=$${SOAK_DURATION:-60s} $(LOCK) $(GO) test -count=1 -timeout 30m -v -run 'TestSoak$$|TestPluginCrash|TestDriverLoad|TestSecretsNeverLeak' ./soak/

# Every fuzz target for a fixed number of inputs beyond its committed seed
# corpus. Counts, not durations: a -fuzztime duration can end with a
# spurious "context deadline exceeded" on Go 1.26.
fuzz-smoke:
	$(LOCK) $(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 20000x ./options/
	$(LOCK) $(GO) test -run '^$$' -fuzz '^FuzzLocalPaths$$' -fuzztime 2000x ./backend/local/
	$(LOCK) $(GO) test -run '^$$' -fuzz '^FuzzHostileServerReplies$$' -fuzztime 300x ./backend/sftp/
	$(LOCK) $(GO) test -run '^$$' -fuzz '^FuzzHostKeyPolicy$$' -fuzztime 6000x ./backend/sftp/
	$(LOCK) $(GO) test -run '^$$' -fuzz '^FuzzRawListing$$' -fuzztime 2000x ./backend/sftp/

plugin:
	VERSION=$(VERSION) scripts/build-plugin.sh $(PLUGIN_ARCH)

plugin-push:
	@[ -n "$(PLUGIN_REF)" ] || { echo "make plugin-push needs PLUGIN_REF=REGISTRY/NAME:TAG, e.g. PLUGIN_REF=registry.example.com/sftpfs:1.3"; exit 2; }
	VERSION=$(VERSION) scripts/plugin-push.sh $(PLUGIN_REF)

plugin-rm:
	scripts/plugin-rm.sh $(PLUGIN_NAME)

# The CSI plugin (docs/csi.md), next to the classic one, which it leaves
# alone.
plugin-csi:
	VERSION=$(VERSION) scripts/build-plugin.sh --csi $(PLUGIN_ARCH)

demo:
	scripts/demo.sh

# Benchmarks hold LOCK for their whole run: numbers taken while something
# else runs are worthless.
BENCH_FLAGS ?= -rounds 5
bench:
	$(LOCK) scripts/bench.sh $(BENCH_FLAGS)

bench-smoke:
	$(LOCK) scripts/bench.sh -smoke
	$(LOCK) scripts/lab.sh ab bin/bench/sftpfs bin/bench/sftpfs 20
	$(LOCK) scripts/lab.sh sched bin/bench/sftpfs 20
	$(LOCK) scripts/lab.sh streams bin/bench/sftpfs 4 8

clean:
	rm -rf bin plugin/build plugin/build-*
