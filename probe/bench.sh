#!/usr/bin/env bash
# Measures the probe's cost per exec (make bench). Prints a table of ns per
# call for failing execs (ENOENT, EACCES, ENOEXEC) and successful
# fork+exec+wait, with nothing attached and with the probe attached,
# alternating over rounds. A report, not a pass/fail check.
#
#   bash probe/bench.sh                          # this kernel, auto mode
#   bash probe/bench.sh -n 5000 -spawn 500       # fewer calls
#   BENCH_KERNEL=6.12 BENCH_MODE=fentry bash probe/bench.sh -n 2000 -spawn 200
#
# BENCH_KERNEL boots that Debian kernel series under qemu (vmtest/'s
# scripts) and runs the bench there in BENCH_MODE (fentry or kprobe), since
# the host may allow only tracepoint mode. Under software emulation absolute
# times are inflated many times over; only the ratios mean something.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if [[ $(id -u) -ne 0 ]]; then
	echo "bench: needs root to attach the probe" >&2
	exit 1
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

if [[ -z ${BENCH_KERNEL:-} ]]; then
	go build -o "$out/execfaild-bench" ./probe/internal/bench
	exec "$out/execfaild-bench" "$@"
fi

mode=${BENCH_MODE:-fentry}
stage=$out/stage
mkdir -p "$stage/vmtest"
CGO_ENABLED=0 go build -o "$stage/init" ./vmtest/init
CGO_ENABLED=0 go build -o "$stage/execfaild-bench" ./probe/internal/bench
args=$(printf ',"%s"' -mode "$mode" "$@")
printf '[{"name":"bench","argv":["/execfaild-bench"%s],"dir":"/","timeout_sec":1500}]\n' "$args" >"$stage/vmtest/jobs.json"
kernel=$(vmtest/kernels.sh "$BENCH_KERNEL")
vmtest/initramfs.sh "$stage" "$out/initramfs.cpio"
log=$out/console.log
echo "bench: booting $(basename "$kernel") under qemu (TCG), mode $mode" >&2
rc=0
vmtest/qemu.sh -k "$kernel" -i "$out/initramfs.cpio" -l "$log" -t 1800 || rc=$?
tr -d '\r' <"$log" | awk '$0 == "=== VMTEST BEGIN bench" {on=1; next} /^=== VMTEST END bench / {print; on=0} on'
if ((rc != 0)) || ! tr -d '\r' <"$log" | grep -q '^=== VMTEST END bench exit=0'; then
	echo "bench: guest run failed (qemu exit $rc); console tail:" >&2
	tail -n 30 "$log" >&2
	exit 1
fi
