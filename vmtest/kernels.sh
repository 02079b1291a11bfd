#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Fetches a Debian cloud kernel for one series and prints where it is.
#
# Usage:
#   vmtest/kernels.sh SERIES            print the path of a bootable vmlinuz
#   vmtest/kernels.sh --root SERIES     print the unpacked package root
#   vmtest/kernels.sh --release SERIES  print the kernel release (uname -r in the guest)
#   vmtest/kernels.sh --package SERIES  print "package version"
#   vmtest/kernels.sh --arch SERIES     print the Debian architecture (amd64, arm64)
#
# SERIES        from                                         package
#   5.10        bullseye, bullseye-security (Debian 11)     linux-image-5.10.0-*-cloud-amd64
#   6.1         bookworm, -updates, -security (Debian 12)    linux-image-6.1.0-*-cloud-amd64
#   6.12        bookworm-security (Debian 12's 6.12)         linux-image-6.12.*-cloud-amd64
#   sid         sid (the newest kernel Debian has)           linux-binary-<ver>-cloud-amd64
#   arm64-S     the same for arm64 (S is one of the above)   …-cloud-arm64
# Only the path (or requested value) goes to stdout; progress goes to
# stderr, so `k=$(vmtest/kernels.sh 6.12)` works.
#
# The kernel comes from Debian's archive through vmtest/debian.sh (a private
# apt configuration; the machine's own sources are not used), unpacked with
# `dpkg -x` into ${EXECFAILD_CACHE:-/var/cache/execfaild}/kernels/
# <package>_<version>/. The series resolves through Debian's meta-package to
# the newest ABI the archive offers (the archive drops old ABIs, so exact
# versions cannot be pinned); the choice is printed to stderr. When apt
# cannot answer or download (no network) the newest already-unpacked kernel
# of the series is used, so reruns work offline.
set -euo pipefail
here=$(dirname "$0")

want=path
case ${1:-} in
--root) want=root; shift ;;
--release) want=release; shift ;;
--package) want=package; shift ;;
--arch) want=arch; shift ;;
esac
series=${1:-}
arch=amd64
base_series=$series
if [[ $series == arm64-* ]]; then
	arch=arm64
	base_series=${series#arm64-}
fi
# pat: the unpack directories that belong to the series, for the offline
# fallback; 6.1's pattern must not match 6.12's packages.
case $base_series in
5.10) suites=bullseye meta=linux-image-cloud-$arch pat="linux-image-5.10.0-*-cloud-${arch}_*" ;;
6.1) suites=bookworm meta=linux-image-cloud-$arch pat="linux-image-6.1.0-*-cloud-${arch}_*" ;;
6.12) suites=bookworm meta=linux-image-6.12-cloud-$arch pat="linux-image-6.12.*-cloud-${arch}_*" ;;
sid) suites=sid meta=linux-image-cloud-$arch pat="linux-binary-*-cloud-${arch}_*" ;;
*)
	echo "kernels.sh: unknown kernel series '${series}' (want 5.10, 6.1, 6.12 or sid, optionally prefixed arm64-)" >&2
	exit 2
	;;
esac

cache=${EXECFAILD_CACHE:-/var/cache/execfaild}/kernels
mkdir -p "$cache"
deb() { "$here/debian.sh" -a "$arch" "$suites" "$@"; }

# resolve: the package holding the vmlinuz and its version. The meta-package
# depends on the versioned image package; since Debian 14 that image package
# is only a shell depending on linux-binary-<ver>, which holds the vmlinuz.
resolve() {
	local image bin
	image=$(deb depends "$meta" '^linux-image-[0-9]') && [[ -n $image ]] || return 1
	bin=$(deb depends "$image" '^linux-binary-') || return 1
	pkg=${bin:-$image}
	ver=$(deb version "$pkg") || return 1
}

pkg='' ver='' dir=''
if resolve && dir=$(deb unpack "$pkg" "$ver" "$cache"); then
	:
else
	dir=''
	while IFS= read -r d; do
		[[ -f $d/.complete ]] && dir=$d
	done < <(find "$cache" -mindepth 1 -maxdepth 1 -type d -name "$pat" | sort -V)
	if [[ -z $dir ]]; then
		echo "kernels.sh: cannot fetch $meta ($suites) and nothing of series $series is cached in $cache" >&2
		exit 1
	fi
	echo "kernels.sh: apt has no answer, using cached $(basename "$dir")" >&2
fi

# Debian ≤ 13 installs /boot/vmlinuz-<release>; the linux-binary packages
# of Debian 14 install /usr/lib/modules/<release>/vmlinuz.
vmlinuz=$(find "$dir/boot" -maxdepth 1 -name 'vmlinuz-*' 2>/dev/null | head -n1 || true)
if [[ -n $vmlinuz ]]; then
	release=${vmlinuz##*/vmlinuz-}
else
	vmlinuz=$(find "$dir/usr/lib/modules" "$dir/lib/modules" -mindepth 2 -maxdepth 2 -name vmlinuz 2>/dev/null | head -n1 || true)
	if [[ -z $vmlinuz ]]; then
		echo "kernels.sh: no boot/vmlinuz-* or usr/lib/modules/*/vmlinuz in $dir" >&2
		exit 1
	fi
	release=$(basename "$(dirname "$vmlinuz")")
fi
b=$(basename "$dir")
echo "kernels.sh: $series -> ${b%%_*} ${b#*_} ($release)" >&2

case $want in
path) echo "$vmlinuz" ;;
root) echo "$dir" ;;
release) echo "$release" ;;
package) echo "${b%%_*} ${b#*_}" ;;
arch) echo "$arch" ;;
esac
