#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Debian packages of any suite and architecture through a private apt
# configuration: its own sources list, package lists and download cache under
# $EXECFAILD_CACHE/apt/<suites>-<arch>/. The machine's own sources, lists,
# preferences and dpkg status are never read or changed, so fetching a
# bullseye or sid kernel, or an arm64 busybox, does not touch what the machine
# installs (and needs no foreign architecture added to dpkg).
#
# Usage:
#   vmtest/debian.sh [-a ARCH] SUITES version PACKAGE
#       candidate version of PACKAGE
#   vmtest/debian.sh [-a ARCH] SUITES depends PACKAGE REGEX
#       first package in the Depends of PACKAGE's candidate whose name matches
#       the extended REGEX (empty output when none does)
#   vmtest/debian.sh [-a ARCH] SUITES unpack PACKAGE VERSION DIR
#       downloads PACKAGE=VERSION and unpacks it with dpkg -x into
#       DIR/<PACKAGE>_<VERSION>/ once; prints that path
#
# SUITES names a release and the suites a server of it has enabled:
#   bullseye   bullseye, bullseye-security        (Debian 11)
#   bookworm   bookworm, bookworm-updates, bookworm-security   (Debian 12;
#              Debian 12's 6.12 kernel is in bookworm-security)
#   sid        sid
# ARCH is a Debian architecture (amd64, the default, or arm64).
#
# The package lists are refreshed when they are older than
# VMTEST_APT_MAX_AGE minutes (default 1440); when the refresh fails (no
# network) the lists already there are used, so re-runs work offline as long
# as what they need is cached. Progress and errors go to stderr.
set -euo pipefail

arch=amd64
if [[ ${1:-} == -a ]]; then
	arch=${2:-}
	shift 2 || true
fi
if (($# < 3)); then
	echo "usage: $0 [-a ARCH] SUITES version|depends|unpack PACKAGE ... (see the header)" >&2
	exit 2
fi
suites=$1 cmd=$2 pkg=$3
shift 3
[[ $arch =~ ^[a-z0-9]+$ ]] || { echo "debian.sh: bad architecture '$arch'" >&2; exit 2; }

mirror=${VMTEST_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${VMTEST_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
case $suites in
bullseye) list=("$mirror bullseye" "$security bullseye-security") ;;
bookworm) list=("$mirror bookworm" "$mirror bookworm-updates" "$security bookworm-security") ;;
sid) list=("$mirror sid") ;;
*) echo "debian.sh: unknown suites '$suites' (want bullseye, bookworm or sid)" >&2; exit 2 ;;
esac

base=${EXECFAILD_CACHE:-/var/cache/execfaild}/apt/$suites-$arch
mkdir -p "$base/lists/partial" "$base/cache/archives/partial" "$base/etc/preferences.d"
{
	for l in "${list[@]}"; do
		# target=Packages: only the package index, not the machine's
		# configured extras (appstream metadata, contents, translations).
		echo "deb [arch=$arch signed-by=/usr/share/keyrings/debian-archive-keyring.gpg target=Packages] $l main"
	done
} >"$base/etc/sources.list.new"
mv "$base/etc/sources.list.new" "$base/etc/sources.list"

opts=(
	-o "Dir::Etc::sourcelist=$base/etc/sources.list"
	-o Dir::Etc::sourceparts=-
	-o "Dir::Etc::preferences=$base/etc/preferences"
	-o "Dir::Etc::preferencesparts=$base/etc/preferences.d"
	-o "Dir::State::Lists=$base/lists"
	-o "Dir::Cache=$base/cache"
	# No dpkg status: what the machine has installed must not change what
	# apt resolves, and an arm64 package is never "installed" here.
	-o Dir::State::status=/dev/null
	-o "APT::Architecture=$arch"
	-o "APT::Architectures=$arch"
	-o Acquire::Languages=none
	# The private lists and downloads are root's; apt's _apt sandbox user
	# could not write them.
	-o APT::Sandbox::User=root
)

# Two fetches for one configuration (the matrix and the booted-system test,
# or two cells) must not run apt at the same time: apt's own lock would fail
# the second instead of making it wait.
exec 8>"$base/.lock"
flock 8

refresh() {
	local max=${VMTEST_APT_MAX_AGE:-1440} stamp=$base/.updated failed=$base/.update-failed
	if [[ -f $stamp && -z $(find "$stamp" -mmin +"$max" 2>/dev/null) ]]; then
		return
	fi
	# Offline, one script calls this several times in a row: one failed
	# attempt in the last 10 minutes is answer enough.
	if [[ -f $failed && -z $(find "$failed" -mmin +10 2>/dev/null) ]] && compgen -G "$base/lists/*_Packages*" >/dev/null; then
		return
	fi
	# --error-on=any: without it a failed fetch is only a warning.
	if apt-get "${opts[@]}" -q --error-on=any update >"$base/update.log" 2>&1; then
		touch "$stamp"
		rm -f "$failed"
	elif compgen -G "$base/lists/*_Packages*" >/dev/null; then
		touch "$failed"
		echo "debian.sh: apt-get update for $suites ($arch) failed, using the lists from $(date -r "$base/lists" '+%F %R') (see $base/update.log)" >&2
	else
		echo "debian.sh: apt-get update for $suites ($arch) failed and no lists are cached (see $base/update.log):" >&2
		tail -n 3 "$base/update.log" >&2
		exit 1
	fi
}

candidate() {
	local v
	v=$(apt-cache "${opts[@]}" policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2; exit}')
	[[ -n $v && $v != "(none)" ]] || return 1
	echo "$v"
}

case $cmd in
version)
	refresh
	candidate "$pkg" || { echo "debian.sh: $suites ($arch) has no package $pkg" >&2; exit 1; }
	;;
depends)
	re=${1:?debian.sh: depends needs a REGEX}
	refresh
	ver=$(candidate "$pkg") || { echo "debian.sh: $suites ($arch) has no package $pkg" >&2; exit 1; }
	# `apt-cache show` lists every version it knows; only the candidate's
	# Depends count. Alternatives (a | b) are split into separate names.
	apt-cache "${opts[@]}" show "$pkg=$ver" 2>/dev/null |
		awk '/^Depends:/ {sub(/^Depends: */, ""); print; exit}' |
		tr ',|' '\n\n' | awk '{print $1}' | grep -E -m1 "$re" || true
	;;
unpack)
	ver=${1:?debian.sh: unpack needs a VERSION} dest=${2:?debian.sh: unpack needs a DIR}
	dir=$dest/${pkg}_$ver
	if [[ ! -f $dir/.complete ]]; then
		mkdir -p "$dest"
		echo "debian.sh: fetching $pkg $ver ($suites, $arch)" >&2
		tmp=$(mktemp -d "$dest/.fetch.XXXXXX")
		trap 'rm -rf "$tmp"' EXIT
		(cd "$tmp" && apt-get "${opts[@]}" -q download "$pkg=$ver" >"$tmp/download.log" 2>&1) || {
			echo "debian.sh: apt-get download $pkg=$ver failed:" >&2
			tail -n 3 "$tmp/download.log" >&2
			exit 1
		}
		rm -rf "$dir"
		mkdir -p "$dir"
		dpkg -x "$tmp"/*.deb "$dir"
		touch "$dir/.complete"
	fi
	echo "$dir"
	;;
*)
	echo "debian.sh: unknown command '$cmd' (want version, depends or unpack)" >&2
	exit 2
	;;
esac
