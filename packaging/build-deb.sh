#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Builds dist/execfaild_<version>_<arch>.deb with dpkg-buildpackage; ARCH
# (amd64 or arm64, default amd64) picks the architecture, cross-built
# when it is not the machine's (the binary has no cgo).
#
# The build runs in a scratch copy of the work tree so debhelper's output
# (debian/execfaild/, debian/.debhelper/) and dpkg-buildpackage's files in
# the parent directory never land in the repository. The Go module and build
# caches of the caller are passed through, so no download happens when
# `go mod download` already ran (as .ci/install-deps does).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

export PATH=/usr/local/go/bin:$PATH
for tool in dpkg-buildpackage dh go; do
	command -v "$tool" >/dev/null || {
		echo "build-deb: $tool not found (run .ci/install-deps)" >&2
		exit 1
	}
done

version=$(dpkg-parsechangelog -l debian/changelog -SVersion)
GOMODCACHE=$(go env GOMODCACHE)
GOCACHE=$(go env GOCACHE)
export GOMODCACHE GOCACHE

work=$(mktemp -d /tmp/execfaild-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
src=$work/execfaild-$version
mkdir -p "$src"
# Tracked and new-but-not-ignored files: what a clean checkout would build.
git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do
		[[ -e $f || -L $f ]] && printf '%s\0' "$f"
	done |
	tar -C "$root" --null -T - -cf - | tar -C "$src" -xf -

arch=${ARCH:-amd64}
case $arch in
amd64 | arm64) ;;
*) echo "build-deb: ARCH must be amd64 or arm64, not '$arch'" >&2; exit 2 ;;
esac
cross=()
# -d: the build dependencies are the build machine's (Go, debhelper), not
# arm64 packages.
[[ $arch != "$(dpkg --print-architecture)" ]] && cross=(--host-arch "$arch" -d)
(cd "$src" && dpkg-buildpackage -us -uc -b --no-sign "${cross[@]}") >"$work/build.log" 2>&1 || {
	tail -40 "$work/build.log" >&2
	echo "build-deb: dpkg-buildpackage failed (log above)" >&2
	exit 1
}

mkdir -p dist
deb=execfaild_${version}_${arch}.deb
cp "$work/$deb" dist/

# Policy problems fail the build; warnings are printed (each one that stays
# is overridden with its reason in debian/execfaild.lintian-overrides).
if command -v lintian >/dev/null; then
	lintian --fail-on error "dist/$deb" ||
		{ echo "build-deb: lintian found errors in dist/$deb" >&2; exit 1; }
elif [[ ${CI:-} == true ]]; then
	echo "build-deb: lintian not installed (run .ci/install-deps)" >&2
	exit 1
fi
echo "dist/$deb"
