#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Refreshes libbpf's BPF headers in bpf/headers/bpf/ from Debian's
# libbpf-dev package of SUITE (default bookworm), fetched through
# vmtest/debian.sh's private apt configuration (the machine's own apt
# sources are not used and nothing is installed), and records where they
# came from in bpf/headers/LIBBPF_VERSION. Run `make generate` afterwards
# and commit the headers, the version file and the regenerated objects.
#
# Usage: bpf/headers/refresh.sh [bullseye|bookworm|sid]
set -euo pipefail

cd "$(dirname "$0")/../.."
suite=${1:-bookworm}
headers=(bpf_helpers.h bpf_helper_defs.h bpf_core_read.h bpf_tracing.h)
cache=${EXECFAILD_CACHE:-/var/cache/execfaild}

version=$(vmtest/debian.sh "$suite" version libbpf-dev)
dir=$(vmtest/debian.sh "$suite" unpack libbpf-dev "$version" "$cache/debs/amd64")
for h in "${headers[@]}"; do
	[[ -f $dir/usr/include/bpf/$h ]] || { echo "refresh.sh: $h missing from libbpf-dev $version" >&2; exit 1; }
	install -m 0644 "$dir/usr/include/bpf/$h" "bpf/headers/bpf/$h"
done
# Debian's version is [epoch:]upstream-revision: libbpf's own is the middle.
upstream=${version#*:}
upstream=${upstream%%-*}
cat >bpf/headers/LIBBPF_VERSION <<EOV
libbpf $upstream
Debian package libbpf-dev $version ($suite), usr/include/bpf/:
${headers[*]}
Refreshed by bpf/headers/refresh.sh.
EOV
echo "bpf/headers: libbpf $upstream (libbpf-dev $version)"
