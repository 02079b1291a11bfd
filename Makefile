# SPDX-License-Identifier: Apache-2.0
# Entry points. `make ci` is what CI runs: it installs what a fresh machine
# lacks, then runs every test tier. Downloads (kernels, rootfs, Debian
# packages) are cached under $(CACHE), outside the repository.
CACHE ?= /var/cache/execfaild
export EXECFAILD_CACHE := $(CACHE)
GO ?= go

.PHONY: all build deps generate check-generate vet test vmtest systemtest bench deb ci clean

all: build

build:
	$(GO) build ./...

# Installs build and test prerequisites (apt packages, Go modules).
deps:
	bash .ci/install-deps

# Regenerates the BPF objects and Go bindings (needs clang).
generate:
	$(GO) generate ./probe/...

# Fails when the committed BPF output differs from a fresh generation.
check-generate: generate
	git diff --exit-code -- probe/ || { echo "generated BPF output is stale: run make generate and commit"; exit 1; }

vet:
	$(GO) vet ./...
	test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt needed"; exit 1; }
	bash .ci/check-spdx

# Unit tests plus the host-kernel tier (needs root; skips with a reason otherwise).
# One package at a time: the probe's suite and the fleet test each load BPF
# programs that see every exec on the host, and each other's failures.
# Then every fuzz target briefly (.ci/fuzz-brief: a fixed execution count
# each, about a minute in all once the instrumented build is cached).
test:
	$(GO) test -count=1 -p 1 ./...
	GO=$(GO) bash .ci/fuzz-brief

# Probe suite inside qemu-booted Debian kernels (5.10, 6.1, 6.12, sid on
# amd64; 6.1, 6.12 on arm64), fentry and kprobe modes, legacy on 5.10, the
# perf transport on 6.1 and 6.12, plus the host in tracepoint mode.
# VMTEST_JOBS cells run at once (default 2).
vmtest:
	bash vmtest/matrix.sh

# The .deb installed and exercised in a booted Debian with systemd.
systemtest: deb
	bash vmtest/system.sh

bench:
	bash probe/bench.sh

# ARCH=arm64 cross-builds the arm64 package.
ARCH ?= amd64
deb:
	ARCH=$(ARCH) bash packaging/build-deb.sh

# Every tier, then a summary with each tier's time and the matrix's retried
# cells; a failed test tier does not stop the ones after it.
ci:
	bash .ci/tiers

clean:
	rm -rf dist
