#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make bench: what watching failed execs costs the programs that fail, with
# nothing attached, with `execfaild run` (this tree's daemon, a file sink),
# and with bpftrace and auditd when they are installed, alternating over
# rounds. A report, not a pass/fail check; only the ratios within one run
# mean anything.
#
#   bash probe/bench.sh                      # 200000 execs per workload, 3 rounds
#   bash probe/bench.sh -n 2000 -spawn 200   # a quick look
#   BENCH_BASELINE_REF=HEAD~5 bash probe/bench.sh   # also an older daemon, same run
#   BENCH_KERNEL=6.12 bash probe/bench.sh -n 2000 -spawn 200
#
# BENCH_BASELINE_REF builds execfaild from that commit too and measures it
# alongside, so "before" and "after" come from one run. BENCH_KERNEL boots
# that Debian kernel series under qemu (vmtest/'s scripts) and runs the
# bench there without peers; under software emulation absolute times are
# inflated many times over, so only the ratios mean something.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if [[ $(id -u) -ne 0 ]]; then
	echo "bench: needs root to attach observers" >&2
	exit 1
fi
out=$(mktemp -d)
# The bench puts the host's audit state back itself, also when interrupted;
# this covers a bench killed outright: its rule removed, the enabled flag
# as it was.
audit_enabled=
if command -v auditctl >/dev/null; then
	audit_enabled=$(auditctl -s 2>/dev/null | awk '$1 == "enabled" {print $2}')
fi
cleanup() {
	if [[ -n ${worktree:-} ]]; then git worktree remove --force "$worktree" >/dev/null 2>&1 || true; fi
	rm -rf "$out"
	if [[ -n $audit_enabled && $audit_enabled != 2 ]]; then
		if auditctl -l 2>/dev/null | grep -q 'key=execfaild-bench'; then
			auditctl -D -k execfaild-bench >/dev/null 2>&1 || true
		fi
		auditctl -e "$audit_enabled" >/dev/null 2>&1 || true
	fi
}
trap cleanup EXIT

daemons=()
if [[ -z ${BENCH_KERNEL:-} ]]; then
	go build -o "$out/execfaild" ./cmd/execfaild
	go build -o "$out/execfaild-bench" ./probe/internal/bench
	if [[ -n ${BENCH_BASELINE_REF:-} ]]; then
		rev=$(git rev-parse --short "$BENCH_BASELINE_REF")
		worktree=$out/baseline
		git worktree add --detach "$worktree" "$rev" >/dev/null
		(cd "$worktree" && go build -o "$out/execfaild-$rev" ./cmd/execfaild)
		daemons+=(-daemon "execfaild@$rev=$out/execfaild-$rev")
	fi
	"$out/execfaild-bench" -daemon "execfaild=$out/execfaild" "${daemons[@]}" "$@"
	exit
fi

stage=$out/stage
mkdir -p "$stage/vmtest"
CGO_ENABLED=0 go build -o "$stage/init" ./vmtest/init
CGO_ENABLED=0 go build -o "$stage/execfaild-bench" ./probe/internal/bench
CGO_ENABLED=0 go build -o "$stage/execfaild" ./cmd/execfaild
args=$(printf ',"%s"' -daemon execfaild=/execfaild -peers=false -latency=0 "$@")
printf '[{"name":"bench","argv":["/execfaild-bench"%s],"dir":"/","timeout_sec":1500}]\n' "$args" >"$stage/vmtest/jobs.json"
kernel=$(vmtest/kernels.sh "$BENCH_KERNEL")
vmtest/initramfs.sh "$stage" "$out/initramfs.cpio"
log=$out/console.log
echo "bench: booting $(basename "$kernel") under qemu (TCG)" >&2
rc=0
vmtest/qemu.sh -k "$kernel" -i "$out/initramfs.cpio" -l "$log" -t 1800 || rc=$?
tr -d '\r' <"$log" | awk '$0 == "=== VMTEST BEGIN bench" {on=1; next} /^=== VMTEST END bench / {print; on=0} on'
if ((rc != 0)) || ! tr -d '\r' <"$log" | grep -q '^=== VMTEST END bench exit=0'; then
	echo "bench: guest run failed (qemu exit $rc); console tail:" >&2
	tail -n 30 "$log" >&2
	exit 1
fi
