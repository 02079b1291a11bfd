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
#
# REF=<commit> builds that commit instead of the work tree: the tree is
# exported with `git archive` (local edits never leak in) and the package
# is kept in $EXECFAILD_CACHE/releases/<commit>/ (default ~/.cache/execfaild),
# so a warm cache does not rebuild it. Only its path is printed on
# standard output. A commit that is not in this clone fails the build under
# CI=true (CI clones are full); elsewhere it is skipped with a reason on
# standard error and nothing on standard output. lintian is not run on it:
# that release was checked when it was made, and today's lintian may judge
# differently. The booted-system test builds the previous release this way.
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

arch=${ARCH:-amd64}
case $arch in
amd64 | arm64) ;;
*) echo "build-deb: ARCH must be amd64 or arm64, not '$arch'" >&2; exit 2 ;;
esac

ref=${REF:-}
if [[ -n $ref ]]; then
	commit=$(git rev-parse --verify --quiet "$ref^{commit}") || {
		if [[ ${CI:-} == true ]]; then
			echo "build-deb: FAIL: commit $ref is not in this clone (CI clones are full: fetch it)" >&2
			exit 1
		fi
		echo "build-deb: skipped: commit $ref is not in this clone (a shallow clone? git fetch --unshallow)" >&2
		exit 0
	}
	cache=${EXECFAILD_CACHE:-$HOME/.cache/execfaild}/releases/$commit
	version=$(git show "$commit:debian/changelog" | dpkg-parsechangelog -l - -SVersion)
	deb=execfaild_${version}_${arch}.deb
	if [[ -s $cache/$deb ]]; then
		echo "$cache/$deb"
		exit 0
	fi
else
	version=$(dpkg-parsechangelog -l debian/changelog -SVersion)
	deb=execfaild_${version}_${arch}.deb
fi
GOMODCACHE=$(go env GOMODCACHE)
GOCACHE=$(go env GOCACHE)
export GOMODCACHE GOCACHE

work=$(mktemp -d /tmp/execfaild-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
src=$work/execfaild-$version
mkdir -p "$src"
if [[ -n $ref ]]; then
	git archive --format=tar "$commit" | tar -C "$src" -xf -
else
	# Tracked and new-but-not-ignored files: what a clean checkout would build.
	git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do
			[[ -e $f || -L $f ]] && printf '%s\0' "$f"
		done |
		tar -C "$root" --null -T - -cf - | tar -C "$src" -xf -
fi
cross=()
# -d: the build dependencies are the build machine's (Go, debhelper), not
# arm64 packages.
[[ $arch != "$(dpkg --print-architecture)" ]] && cross=(--host-arch "$arch" -d)
(cd "$src" && dpkg-buildpackage -us -uc -b --no-sign "${cross[@]}") >"$work/build.log" 2>&1 || {
	tail -40 "$work/build.log" >&2
	echo "build-deb: dpkg-buildpackage failed (log above)" >&2
	exit 1
}

if [[ -n $ref ]]; then
	# Renamed into place: a build cut short never leaves a partial package
	# that a later run would take for the release.
	mkdir -p "$cache"
	cp "$work/$deb" "$cache/.$deb.tmp"
	mv "$cache/.$deb.tmp" "$cache/$deb"
	echo "$cache/$deb"
	exit 0
fi
mkdir -p dist
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
