#!/bin/bash
# The kernel matrix: the probe's test suite on real kernels, one row per
# kernel × attach mode × suite, and a table at the end.
#
# Usage:
#   vmtest/matrix.sh                  every cell: 6.1 and 6.12 × fentry and kprobe
#                                     under qemu, plus the host in tracepoint mode
#   vmtest/matrix.sh 6.12 fentry      one cell (for iterating on the probe)
#   vmtest/matrix.sh 6.1              both modes of one kernel
#   vmtest/matrix.sh host             only the host tier
#
# Environment:
#   VMTEST_SUITE    auto (default): the canary self-check, plus the probe suite
#                   once probe/probe_kernel_test.go exists; "canary" or "probe"
#                   runs only that one
#   VMTEST_RUN      passed as -test.run to the probe suite (a regexp)
#   VMTEST_TIMEOUT  seconds one boot may take before it counts as hung (600)
#   VMTEST_VERBOSE  1 copies each guest's console to stderr while it runs
#   VMTEST_LOGS     where logs go (default dist/vmtest/<UTC time>)
#   EXECFAILD_CACHE where kernels are cached (default /var/cache/execfaild)
#   CI              "true" turns a missing prerequisite (qemu, root) into a
#                   failed row instead of a skipped one
#
# Each guest boots the kernel from vmtest/kernels.sh with an initramfs
# holding vmtest/init as /init, busybox (applets at Debian's paths, so
# /bin/sh and /sbin/modprobe exist) and the test binaries built with
# CGO_ENABLED=0; the tests get EXECFAILD_TEST_MODE=<mode>,
# EXECFAILD_TEST_VM=1 and EXECFAILD_TEST_KERNEL=<series>. Cells are
# independent: a failing or hung one does not stop the others. The exit
# status is non-zero when any row failed.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
root=$PWD
here=$root/vmtest

all_cells=("6.1 fentry" "6.1 kprobe" "6.12 fentry" "6.12 kprobe" "host tracepoint")
cells=()
case ${1:-} in
"") cells=("${all_cells[@]}") ;;
host) cells=("host tracepoint") ;;
6.1 | 6.12)
	if [[ -n ${2:-} ]]; then
		case $2 in
		fentry | kprobe) cells=("$1 $2") ;;
		*) echo "matrix.sh: mode must be fentry or kprobe, not '$2'" >&2; exit 2 ;;
		esac
	else
		cells=("$1 fentry" "$1 kprobe")
	fi
	;;
*) echo "matrix.sh: unknown kernel '$1' (want 6.1, 6.12 or host)" >&2; exit 2 ;;
esac

suite_mode=${VMTEST_SUITE:-auto}
case $suite_mode in
auto | canary | probe) ;;
*) echo "matrix.sh: VMTEST_SUITE must be auto, canary or probe, not '$suite_mode'" >&2; exit 2 ;;
esac
boot_timeout=${VMTEST_TIMEOUT:-600}
[[ $boot_timeout =~ ^[0-9]+$ ]] || { echo "matrix.sh: VMTEST_TIMEOUT must be seconds, not '$boot_timeout'" >&2; exit 2; }
export EXECFAILD_CACHE=${EXECFAILD_CACHE:-/var/cache/execfaild}
if [[ -z ${VMTEST_LOGS:-} && -d $root/dist/vmtest ]]; then
	# Each run keeps its own directory; without pruning, iterating on one
	# cell fills the disk with initramfs copies.
	find "$root/dist/vmtest" -mindepth 1 -maxdepth 1 -type d -name '20*Z' | sort | head -n -9 |
		while IFS= read -r old; do rm -rf "$old"; done
fi
logs=${VMTEST_LOGS:-$root/dist/vmtest/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$logs"
logs=$(realpath "$logs")
build=$logs/build
mkdir -p "$build"

start_all=$SECONDS
rows=()     # "kernel|mode|suite|result|passed|failed|skipped|seconds|boot|note"
failures=() # "label|logfile|job" for the failing-output section

ci() { [[ ${CI:-} == true ]]; }
row() { rows+=("$(IFS='|'; echo "$*")"); }

# ---- suites -------------------------------------------------------------

suites=()
case $suite_mode in
canary) suites=(canary) ;;
probe) suites=(probe) ;;
auto)
	suites=(canary)
	if [[ -f probe/probe_kernel_test.go ]]; then
		suites+=(probe)
	else
		echo "matrix.sh: probe/probe_kernel_test.go does not exist yet: running the canary only"
	fi
	;;
esac

# build_suite NAME PKG: a static test binary, so the initramfs needs no libc.
build_suite() {
	local name=$1 pkg=$2
	echo "matrix.sh: building $name tests ($pkg)"
	CGO_ENABLED=0 go test -c -o "$build/$name.test" "$pkg" >"$build/$name.build.log" 2>&1
}
declare -A suite_ok
for s in "${suites[@]}"; do
	case $s in
	canary) pkg=./vmtest/canary ;;
	probe) pkg=./probe ;;
	esac
	if build_suite "$s" "$pkg"; then
		suite_ok[$s]=1
	else
		suite_ok[$s]=0
		echo "matrix.sh: building the $s tests failed:" >&2
		sed 's/^/    /' "$build/$s.build.log" >&2
	fi
done

# ---- the initramfs ------------------------------------------------------

# json_escape: enough for a -test.run regexp inside a JSON string.
json_escape() {
	local v=${1//\\/\\\\}
	printf '%s' "${v//\"/\\\"}"
}

# One initramfs serves every cell: what differs per cell (mode, series)
# travels on the kernel command line into init's environment.
make_initramfs() {
	local stage=$build/stage
	rm -rf "$stage"
	mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,etc,root,vmtest/bin,vmtest/pkg}
	CGO_ENABLED=0 go build -buildvcs=false -o "$stage/init" ./vmtest/init || return 1
	# busybox-static's binary: the guest has no libc for a dynamic one.
	local bb=/bin/busybox
	[[ -x $bb ]] || { echo "matrix.sh: $bb missing (apt-get install busybox-static)" >&2; return 1; }
	cp "$bb" "$stage/bin/busybox"
	# Applets where Debian keeps the real tools, so a kernel-started
	# /sbin/modprobe (binfmt and module requests) exists as it would on a
	# real system instead of failing as an extra kernel-invoked exec.
	local applet
	for applet in $("$stage/bin/busybox" --list-full); do
		[[ -e $stage/$applet ]] && continue
		mkdir -p "$stage/$(dirname "$applet")"
		ln -s /bin/busybox "$stage/$applet"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$stage/etc/passwd"
	printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' >"$stage/etc/group"

	local jobs=() s dir run
	for s in "${suites[@]}"; do
		((suite_ok[$s])) || continue
		cp "$build/$s.test" "$stage/vmtest/bin/"
		case $s in
		canary) dir=vmtest/canary ;;
		probe) dir=probe ;;
		esac
		# A test binary runs in its package directory under go test, and
		# reads testdata/ relative to it: recreate that in the guest.
		mkdir -p "$stage/vmtest/pkg/$dir"
		[[ -d $dir/testdata ]] && cp -a "$dir/testdata" "$stage/vmtest/pkg/$dir/"
		run=
		[[ $s == probe && -n ${VMTEST_RUN:-} ]] && run=$(printf ',"-test.run","%s"' "$(json_escape "$VMTEST_RUN")")
		# -test.timeout below the boot deadline: a hung test panics with
		# every goroutine's stack instead of the VM just being killed.
		jobs+=("$(printf '{"name":"%s","argv":["/vmtest/bin/%s.test","-test.v","-test.count=1","-test.timeout=%ds"%s],"dir":"/vmtest/pkg/%s"}' \
			"$s" "$s" $((boot_timeout * 8 / 10)) "$run" "$dir")")
	done
	(IFS=,; echo "[${jobs[*]}]") >"$stage/vmtest/jobs.json"
	"$here/initramfs.sh" "$stage" "$build/initramfs.cpio"
}

# ---- parsing ------------------------------------------------------------

# section LOG JOB: the job's output between its BEGIN and END markers.
section() {
	tr -d '\r' <"$1" | awk -v b="=== VMTEST BEGIN $2" -v e="=== VMTEST END $2 " \
		'$0 == b {on=1; next} index($0, e) == 1 {on=0} on'
}
count() { grep -cE "^[[:space:]]*--- $1: " || true; }

# report LABEL KERNEL MODE SUITE LOG CELL_SECONDS BOOT: adds the row for one
# job; its own run time comes from the END marker.
report() {
	local label=$1 kernel=$2 mode=$3 suite=$4 log=$5 secs=$6 boot=$7
	local out passed failed skipped endline code result note=
	out=$(section "$log" "$suite")
	passed=$(count PASS <<<"$out")
	failed=$(count FAIL <<<"$out")
	skipped=$(count SKIP <<<"$out")
	endline=$(tr -d '\r' <"$log" | grep -m1 "^=== VMTEST END $suite " || true)
	code=$(sed -n 's/.* exit=\(-\{0,1\}[0-9]*\).*/\1/p' <<<"$endline")
	result=PASS
	if [[ -z $endline ]]; then
		result=FAIL note="no END marker (guest hung or crashed)"
	elif [[ $code != 0 ]]; then
		result=FAIL note="exit $code"
		# A test binary that panicked (its -test.timeout included) names
		# no failed test; the panic line is the useful summary.
		local p
		p=$(grep -m1 '^panic: ' <<<"$out" | cut -c1-70)
		[[ -n $p ]] && note="exit $code, $p"
	elif ((failed > 0)); then
		result=FAIL note="exit 0 but $failed failed"
	elif ((passed == 0)); then
		result=FAIL note="no test passed"
	fi
	local run
	run=$(sed -n 's/.* seconds=\([0-9.]*\).*/\1/p' <<<"$endline")
	row "$kernel" "$mode" "$suite" "$result" "$passed" "$failed" "$skipped" "${run:--}" "$secs" "$boot" "$note"
	[[ $result == FAIL ]] && failures+=("$label $suite|$log|$suite")
}

# ---- cells --------------------------------------------------------------

run_vm_cell() {
	local series=$1 mode=$2 label="$1 $2"
	local log=$logs/$series-$mode.log s
	if ! command -v qemu-system-x86_64 >/dev/null; then
		for s in "${suites[@]}"; do
			if ci; then
				row "$series" "$mode" "$s" FAIL - - - - - - "qemu-system-x86_64 missing"
			else
				row "$series" "$mode" "$s" SKIP - - - - - - "qemu-system-x86_64 missing (make deps)"
			fi
		done
		return
	fi
	local kernel release
	if ! kernel=$("$here/kernels.sh" "$series" 2>>"$logs/kernels.log"); then
		tail -n 3 "$logs/kernels.log" >&2
		for s in "${suites[@]}"; do row "$series" "$mode" "$s" FAIL - - - - - - "kernel fetch failed (see $logs/kernels.log)"; done
		return
	fi
	release=$(basename "$kernel")
	release=${release#vmlinuz-}
	echo "matrix.sh: $label: booting $release (log: $log)"
	local t0=$SECONDS rc=0
	"$here/qemu.sh" -k "$kernel" -i "$build/initramfs.cpio" -l "$log" -t "$boot_timeout" \
		-a "EXECFAILD_TEST_MODE=$mode EXECFAILD_TEST_VM=1 EXECFAILD_TEST_KERNEL=$series" || rc=$?
	local secs=$((SECONDS - t0)) boot
	boot=$(tr -d '\r' <"$log" | sed -n 's/^=== VMTEST INIT .* uptime=\([0-9.]*\).*/\1/p' | head -n1)
	local kname=$series
	[[ -n $release ]] && kname="$series ($release)"
	for s in "${suites[@]}"; do
		if ! ((suite_ok[$s])); then
			row "$kname" "$mode" "$s" FAIL - - - - - - "test binary did not build"
			continue
		fi
		report "$label" "$kname" "$mode" "$s" "$log" "$secs" "${boot:--}"
		if ((rc == 124)); then
			local last=${rows[-1]}
			[[ $last == *"|PASS|"* ]] || rows[-1]="${last%|*}|boot timed out after ${boot_timeout}s"
		fi
	done
}

run_host_cell() {
	local log=$logs/host-tracepoint.log s
	local kname
	kname="host ($(uname -r))"
	if ((EUID != 0)); then
		for s in "${suites[@]}"; do
			if ci; then row "$kname" tracepoint "$s" FAIL - - - - - - "needs root"; else row "$kname" tracepoint "$s" SKIP - - - - - - "needs root"; fi
		done
		return
	fi
	# The host may not have tracefs mounted; tracepoints attach through it.
	if [[ ! -d /sys/kernel/tracing/events ]]; then
		mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
	fi
	echo "matrix.sh: host tracepoint (log: $log)"
	: >"$log"
	local t0 dir code
	for s in "${suites[@]}"; do
		if ! ((suite_ok[$s])); then
			row "$kname" tracepoint "$s" FAIL - - - - - - "test binary did not build"
			continue
		fi
		case $s in
		canary) dir=vmtest/canary ;;
		probe) dir=probe ;;
		esac
		local args=(-test.v -test.count=1 "-test.timeout=${boot_timeout}s")
		[[ $s == probe && -n ${VMTEST_RUN:-} ]] && args+=(-test.run "$VMTEST_RUN")
		t0=$SECONDS
		echo "=== VMTEST BEGIN $s" >>"$log"
		(cd "$dir" && EXECFAILD_TEST_MODE=tracepoint "$build/$s.test" "${args[@]}" </dev/null >>"$log" 2>&1)
		code=$?
		echo "=== VMTEST END $s exit=$code seconds=$((SECONDS - t0))" >>"$log"
		report "host tracepoint" "$kname" tracepoint "$s" "$log" $((SECONDS - t0)) -
	done
}

if [[ " ${cells[*]} " == *" 6."* ]]; then
	if ! make_initramfs >"$build/initramfs.log" 2>&1; then
		cat "$build/initramfs.log" >&2
		echo "matrix.sh: building the initramfs failed" >&2
		exit 1
	fi
fi
for c in "${cells[@]}"; do
	read -r k m <<<"$c"
	if [[ $k == host ]]; then run_host_cell; else run_vm_cell "$k" "$m"; fi
done

# ---- report -------------------------------------------------------------

bad=0
for r in "${rows[@]}"; do [[ $r == *"|FAIL|"* ]] && bad=1; done

if ((${#failures[@]})); then
	echo
	echo "==================== failing output ===================="
	for f in "${failures[@]}"; do
		IFS='|' read -r label log job <<<"$f"
		echo "---- $label (full log: $log)"
		out=$(section "$log" "$job")
		names=$(grep -oE '^[[:space:]]*--- FAIL: [^ ]+' <<<"$out" | awk '{print $3}')
		if [[ -n $names ]]; then
			for n in $names; do
				# A parent fails with its subtests: show only the leaves,
				# where the messages are.
				awk -v p="$n/" 'index($0, p) == 1 {f=1} END {exit !f}' <<<"$names" && continue
				# go test -v says whose output follows with "=== RUN/CONT/
				# NAME <test>" lines; keep the lines attributed to this test.
				awk -v n="$n" -v f="--- FAIL: $n " '
					/^=== (RUN|CONT|NAME|PAUSE) / {cur = $3}
					cur == n || index($0, f) {print}
					index($0, f) {exit}' <<<"$out" | sed -n '1,60p'
			done
		else
			# No test failed by name: the binary crashed, timed out or the
			# guest died; a panic's first lines and the end of the console
			# say which.
			grep -m1 -A 15 '^panic: ' <<<"$out"
			echo "  [last console lines]"
			tr -d '\r' <"$log" | tail -n 25
		fi
	done
fi

echo
echo "==================== kernel matrix ===================="
fmt='%-34s %-10s %-6s %-6s %4s %4s %4s %6s %6s %6s  %s\n'
# shellcheck disable=SC2059
printf "$fmt" KERNEL MODE SUITE RESULT PASS FAIL SKIP RUN_S CELL_S BOOT_S NOTE
for r in "${rows[@]}"; do
	IFS='|' read -r -a f <<<"$r"
	# shellcheck disable=SC2059
	printf "$fmt" "${f[@]}"
done
echo
echo "total: $((SECONDS - start_all))s; logs: $logs"
exit "$bad"
