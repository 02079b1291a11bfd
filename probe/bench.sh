#!/usr/bin/env bash
# Measures the probe's cost per exec (make bench). Prints a table of ns per
# call for failing execs (ENOENT, EACCES, ENOEXEC) and successful
# fork+exec+wait, with nothing attached, with the probe attached, and
# detached again. A report, not a pass/fail check.
#
#   bash probe/bench.sh                 # 20000 failing execs per kind, 2000 spawns
#   bash probe/bench.sh -n 5000 -spawn 500 -mode tracepoint
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
	echo "bench: needs root to attach the probe" >&2
	exit 1
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go build -o "$out/execfaild-bench" ./probe/internal/bench
"$out/execfaild-bench" "$@"
