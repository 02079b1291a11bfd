#!/bin/bash
# Fetches a Debian cloud kernel for one series and prints where it is.
#
# Usage:
#   vmtest/kernels.sh SERIES            print the path of a bootable vmlinuz
#   vmtest/kernels.sh --root SERIES     print the unpacked package root (…/boot, …/lib/modules)
#   vmtest/kernels.sh --release SERIES  print the kernel release (uname -r in the guest)
#   vmtest/kernels.sh --package SERIES  print "package version"
# SERIES is 6.1 or 6.12. Only the path (or requested value) goes to stdout;
# progress goes to stderr, so `k=$(vmtest/kernels.sh 6.12)` works.
#
# The kernel comes from Debian's archive through apt (`apt-get download`),
# unpacked with `dpkg -x` into ${EXECFAILD_CACHE:-/var/cache/execfaild}/kernels/
# <package>_<version>/. The series resolves through Debian's meta-package to the
# newest ABI the archive offers (the archive drops old ABIs, so exact versions
# cannot be pinned); the chosen package and version are printed to stderr.
# When apt cannot answer (no network) the newest already-unpacked kernel of
# the series is used, so reruns work offline.
set -euo pipefail

want=path
case ${1:-} in
--root) want=root; shift ;;
--release) want=release; shift ;;
--package) want=package; shift ;;
esac
series=${1:-}
case $series in
6.1) meta=linux-image-cloud-amd64 ;;
6.12) meta=linux-image-6.12-cloud-amd64 ;;
*)
	echo "kernels.sh: unknown kernel series '${series}' (want 6.1 or 6.12)" >&2
	exit 2
	;;
esac

cache=${EXECFAILD_CACHE:-/var/cache/execfaild}/kernels
mkdir -p "$cache"

# The meta-package's Depends names the concrete image package; a stale or
# missing package index needs one `apt-get update` before it knows either.
resolve() {
	apt-cache depends "$meta" 2>/dev/null |
		awk '/Depends: linux-image-[0-9]/ {print $2; exit}'
}
pkg=$(resolve || true)
if [[ -z $pkg ]]; then
	apt-get update -qq >&2 || true
	pkg=$(resolve || true)
fi
ver=
if [[ -n $pkg ]]; then
	ver=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2; exit}')
	[[ $ver == "(none)" ]] && ver=
fi

dir=
if [[ -n $pkg && -n $ver ]]; then
	dir=$cache/${pkg}_${ver}
	# Matrix and booted-system runs may fetch the same kernel at once; the
	# second waits and then finds the unpack complete.
	exec 9>"$cache/.lock"
	flock 9
	if [[ ! -f $dir/.complete ]]; then
		echo "kernels.sh: fetching $pkg $ver" >&2
		tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
		trap 'rm -rf "$tmp"' EXIT
		# apt drops privileges to _apt for downloads; a root-owned mktemp dir
		# is not writable by it, hence the chmod.
		chmod 755 "$tmp"
		(cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver" >&2)
		rm -rf "$dir"
		mkdir -p "$dir"
		dpkg -x "$tmp"/*.deb "$dir"
		touch "$dir/.complete"
	fi
	flock -u 9
else
	# Offline: newest complete unpack whose package name belongs to the series.
	case $series in
	6.1) pat='linux-image-6.1.0-*-cloud-amd64_*' ;;
	6.12) pat='linux-image-6.12.*-cloud-amd64_*' ;;
	esac
	while IFS= read -r d; do
		[[ -f $d/.complete ]] && dir=$d
	done < <(find "$cache" -mindepth 1 -maxdepth 1 -type d -name "$pat" | sort -V)
	if [[ -z $dir ]]; then
		echo "kernels.sh: apt knows no $meta and nothing is cached in $cache" >&2
		exit 1
	fi
	echo "kernels.sh: apt has no answer, using cached $(basename "$dir")" >&2
fi

vmlinuz=$(find "$dir/boot" -maxdepth 1 -name 'vmlinuz-*' 2>/dev/null | head -n1)
if [[ -z $vmlinuz ]]; then
	echo "kernels.sh: no boot/vmlinuz-* in $dir" >&2
	exit 1
fi
release=${vmlinuz##*/vmlinuz-}
base=$(basename "$dir")
echo "kernels.sh: $series -> ${base%%_*} ${base#*_} ($release)" >&2

case $want in
path) echo "$vmlinuz" ;;
root) echo "$dir" ;;
release) echo "$release" ;;
package) echo "${base%%_*} ${base#*_}" ;;
esac
