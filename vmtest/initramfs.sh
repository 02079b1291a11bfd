#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Packs a directory into an initramfs (cpio "newc", files owned by root).
#
# Usage: vmtest/initramfs.sh [--zstd] DIR OUT
#
# Uncompressed by default: under software emulation the kernel unpacks a
# plain cpio faster than it decompresses one, and qemu copies it into guest
# memory without a size problem at tens of megabytes. --zstd suits large
# trees (a whole Debian rootfs); Debian's kernels decompress zstd initrds.
set -euo pipefail
zstd=0
if [[ ${1:-} == --zstd ]]; then zstd=1; shift; fi
if (($# != 2)) || [[ ! -d $1 ]]; then
	echo "usage: $0 [--zstd] DIR OUT" >&2
	exit 2
fi
dir=$1 out=$2
out=$(realpath -m "$out")
if ((zstd)); then
	(cd "$dir" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet | zstd -q -T0 -3 -f -o "$out")
else
	(cd "$dir" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet >"$out")
fi
