#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The kernel matrix: the probe's test suite on real kernels, one row per
# kernel × attach mode × suite, and a table at the end.
#
# Usage:
#   vmtest/matrix.sh                  every cell: 5.10, 6.1, 6.12 and sid ×
#                                     fentry and kprobe, 5.10 legacy, 6.1
#                                     kprobe+perf, 6.12 fentry+perf, and
#                                     arm64-6.1 and arm64-6.12 × fentry and
#                                     kprobe under qemu, plus the host in
#                                     tracepoint mode
#   vmtest/matrix.sh 6.12 fentry      one cell (for iterating on the probe)
#   vmtest/matrix.sh 6.12 kprobe+perf one mode with the perf event array
#                                     transport forced (any mode, any kernel)
#   vmtest/matrix.sh 6.1              every default mode of one kernel
#   vmtest/matrix.sh "5.10 legacy" "6.1 kprobe+perf"
#                                     the cells named, each "SERIES MODE"
#   vmtest/matrix.sh arm64            every arm64 cell
#   vmtest/matrix.sh host             only the host tier
# Kernel series are those of vmtest/kernels.sh: 5.10, 6.1, 6.12, sid, and
# arm64-<series> for the arm64 build of one of them.
#
# Environment:
#   VMTEST_SUITE    auto (default): the canary self-check, plus the probe suite
#                   once probe/probe_kernel_test.go exists; "canary" or "probe"
#                   runs only that one
#   VMTEST_RUN      passed as -test.run to the probe suite (a regexp)
#   VMTEST_JOBS     cells run at the same time (default 2, one per core of
#                   the machines here; 1 runs them one after another)
#   VMTEST_IDLE     seconds a guest may print nothing (kernel messages aside)
#                   before it counts as hung (300); inside the guest a test
#                   suite silent for two thirds of that is stopped with its
#                   goroutines' stacks. Deadlines follow progress: a slower
#                   machine takes longer, it does not fail
#   VMTEST_TIMEOUT  seconds one boot may take at most (2400): only a cap for
#                   a guest that prints forever, far above any healthy boot
#   VMTEST_RETRIES  how many times a failed guest cell boots again (1); the
#                   table says when a row passed only on a later boot, and
#                   the summary counts retried cells: a retry is a defect
#                   to fix, not a pass
#   VMTEST_SLOWDOWN N (default 1) runs N-1 busy loops beside each guest, so
#                   it gets about 1/N of the CPU it would: the matrix on a
#                   machine N times slower than this one (the host cell
#                   runs natively, unslowed)
#   VMTEST_VERBOSE  1 copies each guest's console to stderr while it runs
#   VMTEST_LOGS     where logs go (default dist/vmtest/<UTC time>)
#   VMTEST_SUMMARY  a file that receives the run's one-line outcome (rows,
#                   failures, retried cells); make ci prints it last
#   EXECFAILD_CACHE where kernels and Debian packages are cached (default
#                   /var/cache/execfaild)
#   CI              "true" turns a missing prerequisite (qemu, root) into a
#                   failed row instead of a skipped one
#
# Each guest boots the kernel from vmtest/kernels.sh with an initramfs of its
# architecture holding vmtest/init as /init, busybox (applets at Debian's
# paths, so /bin/sh and /sbin/modprobe exist) and the test binaries built with
# CGO_ENABLED=0 (GOARCH=arm64 for arm64 guests; their busybox is Debian's
# busybox-static:arm64, fetched through vmtest/debian.sh); the tests get
# EXECFAILD_TEST_MODE=<mode>, EXECFAILD_TEST_TRANSPORT=perf for a <mode>+perf
# cell (legacy mode takes the perf transport by itself), EXECFAILD_TEST_VM=1,
# EXECFAILD_TEST_KERNEL=<major.minor> and, on an arm64 kernel built without
# ftrace direct calls (6.1), EXECFAILD_TEST_NO_FENTRY=<reason>: fentry on
# kernel functions cannot attach there. Cells are independent: a failing or
# hung one does not stop the others. The exit status is non-zero when any row
# failed.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
root=$PWD
here=$root/vmtest

usage_series="5.10, 6.1, 6.12, sid, arm64-6.1, arm64-6.12, arm64 or host"
# modes_of SERIES: the modes a series is tested in by default. legacy (the
# hooks and transport for kernels before 5.8, forced) runs on 5.10, whose
# exec_binprm is not inlined; the perf event array transport is also forced
# once on 6.1 (kprobe) and 6.12 (fentry). <mode>+perf runs any mode with it.
modes_of() {
	case $1 in
	5.10) echo fentry kprobe legacy ;;
	6.1) echo fentry kprobe kprobe+perf ;;
	6.12) echo fentry kprobe fentry+perf ;;
	*) echo fentry kprobe ;;
	esac
}
# The table's order; cells start in another (see "Start order" below).
all_series=(5.10 6.1 6.12 sid arm64-6.1 arm64-6.12)
all_cells=()
for s in "${all_series[@]}"; do
	for m in $(modes_of "$s"); do all_cells+=("$s $m"); done
done
all_cells+=("host tracepoint")

# check_mode MODE: the modes a cell may name.
check_mode() {
	case $1 in
	fentry | kprobe | legacy | fentry+perf | kprobe+perf | legacy+perf) ;;
	*) echo "matrix.sh: mode must be fentry, kprobe or legacy, optionally +perf, not '$1'" >&2; exit 2 ;;
	esac
}

cells=()
case ${1:-} in
"") cells=("${all_cells[@]}") ;;
*" "*)
	for c in "$@"; do
		read -r k m <<<"$c"
		[[ $k == host ]] || check_mode "$m"
		cells+=("$k $m")
	done
	;;
host) cells=("host tracepoint") ;;
arm64)
	for c in "${all_cells[@]}"; do [[ $c == arm64-* ]] && cells+=("$c"); done
	;;
5.10 | 6.1 | 6.12 | sid | arm64-5.10 | arm64-6.1 | arm64-6.12 | arm64-sid)
	if [[ -n ${2:-} ]]; then
		check_mode "$2"
		cells=("$1 $2")
	else
		for m in $(modes_of "$1"); do cells+=("$1 $m"); done
	fi
	;;
*) echo "matrix.sh: unknown kernel '$1' (want $usage_series)" >&2; exit 2 ;;
esac

suite_mode=${VMTEST_SUITE:-auto}
case $suite_mode in
auto | canary | probe) ;;
*) echo "matrix.sh: VMTEST_SUITE must be auto, canary or probe, not '$suite_mode'" >&2; exit 2 ;;
esac
boot_timeout=${VMTEST_TIMEOUT:-2400}
boot_idle=${VMTEST_IDLE:-300}
slowdown=${VMTEST_SLOWDOWN:-1}
[[ $boot_idle =~ ^[0-9]+$ && $boot_idle -ge 30 ]] || { echo "matrix.sh: VMTEST_IDLE must be 30 seconds or more, not '$boot_idle'" >&2; exit 2; }
[[ $slowdown =~ ^[1-9]$ ]] || { echo "matrix.sh: VMTEST_SLOWDOWN must be 1 to 9, not '$slowdown'" >&2; exit 2; }
# A suite inside the guest is stopped (with its stacks) before the host
# gives up on the guest's console.
job_idle=$((boot_idle * 2 / 3))
retries=${VMTEST_RETRIES:-1}
[[ $retries =~ ^[0-9]$ ]] || { echo "matrix.sh: VMTEST_RETRIES must be 0 to 9, not '$retries'" >&2; exit 2; }
[[ $boot_timeout =~ ^[0-9]+$ ]] || { echo "matrix.sh: VMTEST_TIMEOUT must be seconds, not '$boot_timeout'" >&2; exit 2; }
max_jobs=${VMTEST_JOBS:-2}
[[ $max_jobs =~ ^[1-9][0-9]*$ ]] || { echo "matrix.sh: VMTEST_JOBS must be a positive number, not '$max_jobs'" >&2; exit 2; }
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
results=$logs/.results
rm -rf "$results"
mkdir -p "$build" "$results"

start_all=$SECONDS
rows=()     # "kernel|mode|suite|result|passed|failed|skipped|seconds|boot|quiet|rate|note"
failures=() # "label|logfile|job" for the failing-output section

ci() { [[ ${CI:-} == true ]]; }
row() { rows+=("$(IFS='|'; echo "$*")"); }
# unmet KERNEL MODE SUITE REASON: a missing prerequisite skips the row on a
# developer's machine and fails it in CI.
unmet() {
	if ci; then row "$1" "$2" "$3" FAIL - - - - - - - - "$4"; else row "$1" "$2" "$3" SKIP - - - - - - - - "$4"; fi
}
arch_of() { if [[ $1 == arm64-* ]]; then echo arm64; else echo amd64; fi; }
qemu_of() { if [[ $1 == arm64 ]]; then echo qemu-system-aarch64; else echo qemu-system-x86_64; fi; }
suite_dir() {
	case $1 in
	canary) echo vmtest/canary ;;
	probe) echo probe ;;
	esac
}

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

declare -A need_arch=() # architectures with a VM cell
host_cell=0
for c in "${cells[@]}"; do
	read -r k _ <<<"$c"
	if [[ $k == host ]]; then host_cell=1; else need_arch[$(arch_of "$k")]=1; fi
done
build_arches=("${!need_arch[@]}")
((host_cell)) && [[ -z ${need_arch[amd64]:-} ]] && build_arches+=(amd64)

# Static test binaries, so an initramfs needs no libc; one set per guest
# architecture. suite_ok[arch/suite] is 1 when it built; build_note says why
# not, in the table's words.
declare -A suite_ok=() build_note=()
for a in "${build_arches[@]}"; do
	mkdir -p "$build/$a"
	for s in "${suites[@]}"; do
		echo "matrix.sh: building $s tests for $a"
		if GOARCH=$a CGO_ENABLED=0 go test -c -o "$build/$a/$s.test" "./$(suite_dir "$s")" >"$build/$a/$s.build.log" 2>&1; then
			suite_ok[$a/$s]=1
		else
			suite_ok[$a/$s]=0
			# The first compiler error (after go's "# package" line) is
			# what the row shows; the whole log is in the failing output.
			first=$(grep -v '^#' "$build/$a/$s.build.log" | head -n1 | cut -c1-90)
			build_note[$a/$s]="$s tests do not build for $a: $first"
			echo "matrix.sh: building the $s tests for $a failed (log: $build/$a/$s.build.log)" >&2
		fi
	done
done

# ---- the initramfs ------------------------------------------------------

# json_escape: enough for a -test.run regexp inside a JSON string.
json_escape() {
	local v=${1//\\/\\\\}
	printf '%s' "${v//\"/\\\"}"
}

# busybox_for ARCH: a static busybox for the guest (the initramfs has no libc).
# amd64 uses the machine's busybox-static; arm64 unpacks Debian's
# busybox-static:arm64 through the private apt configuration, so the machine
# needs no foreign architecture.
busybox_for() {
	if [[ $1 == amd64 ]]; then
		[[ -x /bin/busybox ]] || { echo "matrix.sh: /bin/busybox missing (apt-get install busybox-static)" >&2; return 1; }
		echo /bin/busybox
		return
	fi
	local ver dir
	ver=$("$here/debian.sh" -a "$1" bookworm version busybox-static) || return 1
	dir=$("$here/debian.sh" -a "$1" bookworm unpack busybox-static "$ver" "$EXECFAILD_CACHE/debs/$1") || return 1
	[[ -x $dir/bin/busybox ]] || { echo "matrix.sh: no bin/busybox in $dir" >&2; return 1; }
	echo "$dir/bin/busybox"
}

# One initramfs per architecture serves every cell of it: what differs per
# cell (mode, series) travels on the kernel command line into init's
# environment.
make_initramfs() {
	local arch=$1
	local stage=$build/$arch/stage bb
	rm -rf "$stage"
	mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,etc,root,vmtest/bin,vmtest/pkg}
	GOARCH=$arch CGO_ENABLED=0 go build -buildvcs=false -o "$stage/init" ./vmtest/init || return 1
	bb=$(busybox_for "$arch") || return 1
	cp "$bb" "$stage/bin/busybox"
	# Applets where Debian keeps the real tools, so a kernel-started
	# /sbin/modprobe (binfmt and module requests) exists as it would on a
	# real system instead of failing as an extra kernel-invoked exec. The
	# list comes from the machine's busybox, which runs here; the arm64 one
	# is the same Debian release, so it has the same applets.
	local applet
	[[ -x /bin/busybox ]] || { echo "matrix.sh: /bin/busybox missing (apt-get install busybox-static)" >&2; return 1; }
	for applet in $(/bin/busybox --list-full); do
		[[ -e $stage/$applet ]] && continue
		mkdir -p "$stage/$(dirname "$applet")"
		ln -s /bin/busybox "$stage/$applet"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$stage/etc/passwd"
	printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' >"$stage/etc/group"

	local jobs=() s dir run
	for s in "${suites[@]}"; do
		((suite_ok[$arch/$s])) || continue
		cp "$build/$arch/$s.test" "$stage/vmtest/bin/"
		dir=$(suite_dir "$s")
		# A test binary runs in its package directory under go test, and
		# reads testdata/ relative to it: recreate that in the guest.
		mkdir -p "$stage/vmtest/pkg/$dir"
		[[ -d $dir/testdata ]] && cp -a "$dir/testdata" "$stage/vmtest/pkg/$dir/"
		run=
		[[ $s == probe && -n ${VMTEST_RUN:-} ]] && run=$(printf ',"-test.run","%s"' "$(json_escape "$VMTEST_RUN")")
		# -test.timeout below the boot deadline: a hung test panics with
		# every goroutine's stack instead of the VM just being killed.
		jobs+=("$(printf '{"name":"%s","argv":["/vmtest/bin/%s.test","-test.v","-test.count=1","-test.timeout=%ds"%s],"dir":"/vmtest/pkg/%s","idle_sec":%d}' \
			"$s" "$s" $((boot_timeout * 8 / 10)) "$run" "$dir" "$job_idle")")
	done
	(IFS=,; echo "[${jobs[*]}]") >"$stage/vmtest/jobs.json"
	"$here/initramfs.sh" "$stage" "$build/$arch/initramfs.cpio"
}

declare -A initramfs_ok=()
for a in "${!need_arch[@]}"; do
	echo "matrix.sh: packing the $a initramfs"
	if make_initramfs "$a" >"$build/$a/initramfs.log" 2>&1; then
		initramfs_ok[$a]=1
	else
		initramfs_ok[$a]=0
		sed 's/^/    /' "$build/$a/initramfs.log" >&2
		echo "matrix.sh: building the $a initramfs failed: its cells fail" >&2
	fi
done

# ---- kernels ------------------------------------------------------------

# Fetched one after another before any cell starts: the fetches share apt
# configurations and a download is quicker than waiting in a cell's slot.
declare -A kernel_path=() kernel_root=() kernel_err=()
for c in "${cells[@]}"; do
	read -r k _ <<<"$c"
	[[ $k == host || -n ${kernel_path[$k]:-}${kernel_err[$k]:-} ]] && continue
	if p=$("$here/kernels.sh" "$k" 2>>"$logs/kernels.log"); then
		kernel_path[$k]=$p
		# The unpacked package: above boot/vmlinuz-* or usr/lib/modules/*/vmlinuz.
		case $p in
		*/boot/vmlinuz-*) kernel_root[$k]=${p%/boot/vmlinuz-*} ;;
		*/usr/lib/modules/*) kernel_root[$k]=${p%/usr/lib/modules/*} ;;
		esac
	else
		tail -n 3 "$logs/kernels.log" >&2
		kernel_err[$k]="kernel fetch failed (see $logs/kernels.log)"
	fi
done

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
	if [[ $result == FAIL && $note != *panic:* ]]; then
		# More than an exit code: a probe that does not start fails every
		# test with the same words, so those are the summary; otherwise the
		# failed leaf tests' names.
		local msg
		msg=$(grep -m1 -oE 'start probe \(mode "[a-z]*"\): .*' <<<"$out" | cut -c1-140)
		if [[ -z $msg ]]; then
			msg=$(grep -oE '^[[:space:]]*--- FAIL: [^ ]+' <<<"$out" | awk '{print $3}' |
				awk '{n[NR]=$0} END {for (i=1; i<=NR; i++) {leaf=1; for (j=1; j<=NR; j++) if (index(n[j], n[i] "/") == 1) leaf=0; if (leaf) printf "%s%s", (c++ ? " " : ""), n[i]}}' |
				cut -c1-140)
			[[ -n $msg ]] && msg="failed: $msg"
		fi
		[[ -n $msg ]] && note="$note; $msg"
	fi
	local run quiet rate
	run=$(sed -n 's/.* seconds=\([0-9.]*\).*/\1/p' <<<"$endline")
	# How close the suite came to its deadlines: its longest silence (the
	# idle limit is $job_idle s) and its slowest storm, per exec.
	quiet=$(sed -n 's/.* quiet=\([0-9.]*\).*/\1/p' <<<"$endline")
	rate=$(grep -oE 'rate: [0-9.]+ ms per exec' <<<"$out" | awk '$2 > m {m = $2} END {if (m != "") print m}')
	row "$kernel" "$mode" "$suite" "$result" "$passed" "$failed" "$skipped" "${run:--}" "$secs" "$boot" "${quiet:--}" "${rate:--}" "$note"
	[[ $result == FAIL ]] && failures+=("$label $suite|$log|$suite")
}

# unbuilt KERNEL MODE ARCH SUITE: the row of a suite whose test binary did
# not build; its compiler output goes to the failing-output section.
unbuilt() {
	row "$1" "$2" "$4" FAIL - - - - - - - - "${build_note[$3/$4]}"
	failures+=("$1 $2 $4 (build)|$build/$3/$4.build.log|")
}

# ---- cells --------------------------------------------------------------

# kernel_config SERIES: the kernel's build config from its package (boot/
# config-<release> up to Debian 13, usr/lib/modules/<release>/config after).
kernel_config() {
	local d=${kernel_root[$1]:-}
	[[ -n $d ]] || return 0
	cat "$d"/boot/config-* "$d"/usr/lib/modules/*/config 2>/dev/null || true
}

run_vm_cell() {
	local series=$1 mode=$2 label="$1 $2" arch s
	arch=$(arch_of "$series")
	local log=$logs/$series-$mode.log qemu
	qemu=$(qemu_of "$arch")
	if ! command -v "$qemu" >/dev/null; then
		for s in "${suites[@]}"; do unmet "$series" "$mode" "$s" "$qemu missing (make deps)"; done
		return
	fi
	if [[ -n ${kernel_err[$series]:-} ]]; then
		for s in "${suites[@]}"; do row "$series" "$mode" "$s" FAIL - - - - - - - - "${kernel_err[$series]}"; done
		return
	fi
	if ! ((initramfs_ok[$arch])); then
		for s in "${suites[@]}"; do row "$series" "$mode" "$s" FAIL - - - - - - - - "$arch initramfs did not build (see $build/$arch/initramfs.log)"; done
		return
	fi
	local kernel=${kernel_path[$series]} release
	# Debian ≤ 13: boot/vmlinuz-<release>; sid: usr/lib/modules/<release>/vmlinuz.
	release=$(basename "$kernel")
	if [[ $release == vmlinuz-* ]]; then release=${release#vmlinuz-}; else release=$(basename "$(dirname "$kernel")"); fi
	local kname="$series ($release)"
	# Only suites that built are in the initramfs; a guest with none to run
	# would prove nothing.
	local runnable=0
	for s in "${suites[@]}"; do ((suite_ok[$arch/$s])) && runnable=1; done
	if ! ((runnable)); then
		for s in "${suites[@]}"; do unbuilt "$kname" "$mode" "$arch" "$s"; done
		return
	fi
	echo "matrix.sh: $label: booting $release (log: $log)"
	local t0=$SECONDS rc=0
	# The canary compares the release with the series: major.minor of what
	# kernels.sh chose ("sid" names no version).
	local want=${release%%-*}
	want=$(cut -d. -f1,2 <<<"${want%%+*}")
	# panic_on_warn: a kernel WARN (the verifier's about a program it
	# should not have loaded, a map it should not have allowed) ends the
	# guest, and the cell fails naming it, instead of scrolling past.
	local env="panic_on_warn=1 EXECFAILD_TEST_MODE=${mode%+perf} EXECFAILD_TEST_VM=1 EXECFAILD_TEST_KERNEL=$want"
	[[ $mode == *+perf ]] && env+=" EXECFAILD_TEST_TRANSPORT=perf"
	# arm64 attaches BPF trampolines to kernel functions through ftrace
	# direct calls (Linux 6.4+); a kernel built without them refuses fentry,
	# and the tests are told so from the kernel's own build config.
	if [[ $arch == arm64 ]] && ! kernel_config "$series" | grep -q '^CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS=y'; then
		env+=" EXECFAILD_TEST_NO_FENTRY=arm64-without-ftrace-direct-calls"
	fi
	# One vCPU: with two, the emulator now and then ran a kernel text the
	# other vCPU was patching (a static key switched as a tracepoint was
	# enabled) and the guest oopsed mid-instruction, in the canary as in
	# the probe suite; the booted-system test runs on one for the same
	# reason. Two cells at a time still keep both host cores busy.
	"$here/qemu.sh" -A "$arch" -c 1 -k "$kernel" -i "$build/$arch/initramfs.cpio" -l "$log" -t "$boot_timeout" -q "$boot_idle" -S "$slowdown" -a "$env" || rc=$?
	local secs=$((SECONDS - t0)) boot
	boot=$(tr -d '\r' <"$log" | sed -n 's/^=== VMTEST INIT .* uptime=\([0-9.]*\).*/\1/p' | head -n1)
	echo "matrix.sh: $label: done in ${secs}s"
	for s in "${suites[@]}"; do
		if ! ((suite_ok[$arch/$s])); then
			unbuilt "$kname" "$mode" "$arch" "$s"
			continue
		fi
		report "$label" "$kname" "$mode" "$s" "$log" "$secs" "${boot:--}"
		local warn
		warn=$(tr -d '\r' <"$log" | grep -m1 -E '^\[ *[0-9.]+\] (WARNING:|Kernel panic - not syncing: panic_on_warn)' | sed 's/^\[ *[0-9.]*\] //') || true
		if [[ -n $warn ]]; then
			local last=${rows[-1]}
			rows[-1]="${last%|*}|kernel warned (panic_on_warn): ${warn:0:120}"
			[[ $last == *"|PASS|"* ]] && rows[-1]=${rows[-1]/|PASS|/|FAIL|}
		elif ((rc == 124 || rc == 120)); then
			local last=${rows[-1]} why="boot timed out after ${boot_timeout}s"
			((rc == 120)) && why="guest printed nothing for ${boot_idle}s"
			[[ $last == *"|PASS|"* ]] || rows[-1]="${last%|*}|$why"
		fi
	done
}

run_host_cell() {
	local log=$logs/host-tracepoint.log s
	local kname
	kname="host ($(uname -r))"
	if ((EUID != 0)); then
		for s in "${suites[@]}"; do unmet "$kname" tracepoint "$s" "needs root"; done
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
		if ! ((suite_ok[amd64/$s])); then
			unbuilt "$kname" tracepoint amd64 "$s"
			continue
		fi
		dir=$(suite_dir "$s")
		local args=(-test.v -test.count=1 "-test.timeout=${boot_timeout}s")
		# No idle watchdog on the host: it runs natively, and go test's own
		# -test.timeout prints the stacks of a hung suite.
		[[ $s == probe && -n ${VMTEST_RUN:-} ]] && args+=(-test.run "$VMTEST_RUN")
		t0=$SECONDS
		echo "=== VMTEST BEGIN $s" >>"$log"
		(cd "$dir" && EXECFAILD_TEST_MODE=tracepoint "$build/amd64/$s.test" "${args[@]}" </dev/null >>"$log" 2>&1)
		code=$?
		echo "=== VMTEST END $s exit=$code seconds=$((SECONDS - t0))" >>"$log"
		report "host tracepoint" "$kname" tracepoint "$s" "$log" $((SECONDS - t0)) -
	done
	echo "matrix.sh: host tracepoint: done"
}

# retry_vm_cell SERIES MODE: a guest under software emulation now and then
# wedges in the emulator rather than in the kernel or the tests (seen: a
# soft lockup on a jump the kernel had just patched in, and a syscall
# tracepoint that never fired after being enabled). A failed cell boots
# once more (VMTEST_RETRIES, default 1); its rows are the last attempt's,
# and the note says that an earlier one failed and keeps its log.
retry_vm_cell() {
	local series=$1 mode=$2 try r
	for ((try = 1; try <= retries; try++)); do
		printf '%s\n' "${rows[@]}" | grep -q '|FAIL|' || return 0
		local log=$logs/$series-$mode.log first=
		for r in "${rows[@]}"; do
			[[ $r == *"|FAIL|"* ]] && { first=${r##*|}; break; }
		done
		mv "$log" "${log%.log}.try$try.log"
		echo "matrix.sh: $series $mode: failed (${first:-?}); booting it again (first attempt: ${log%.log}.try$try.log)"
		rows=() failures=()
		run_vm_cell "$series" "$mode"
		local again=() note
		for r in "${rows[@]}"; do
			note=${r##*|}
			again+=("${r%|*}|${note}${note:+; }boot $((try + 1)), boot $try failed: ${first:-?}")
		done
		rows=("${again[@]}")
	done
}

# run_cell I: runs cells[I] in a subshell of its own (cells run
# concurrently) and leaves its rows and failures in $results/I.*.
run_cell() {
	local i=$1 k m
	read -r k m <<<"${cells[$i]}"
	rows=() failures=()
	if [[ $k == host ]]; then
		run_host_cell
	else
		run_vm_cell "$k" "$m"
		retry_vm_cell "$k" "$m"
	fi
	printf '%s\n' "${rows[@]}" >"$results/$i.rows"
	((${#failures[@]})) && printf '%s\n' "${failures[@]}" >"$results/$i.failures"
	return 0
}

# Start order: arm64 cells first, since their guests emulate a foreign
# instruction set and their suites are the slowest once the probe runs there;
# a long cell started last would run alone at the end. The table keeps the
# cells' own order.
order=()
for i in "${!cells[@]}"; do [[ ${cells[$i]} == arm64-* ]] && order+=("$i"); done
for i in "${!cells[@]}"; do [[ ${cells[$i]} == arm64-* ]] || order+=("$i"); done

echo "matrix.sh: ${#cells[@]} cells, $max_jobs at a time"
t_cells=$SECONDS
for i in "${order[@]}"; do
	while (($(jobs -rp | wc -l) >= max_jobs)); do wait -n; done
	run_cell "$i" &
done
wait
cells_secs=$((SECONDS - t_cells))

rows=() failures=()
for i in "${!cells[@]}"; do
	if [[ -f $results/$i.rows ]]; then
		mapfile -t r <"$results/$i.rows"
		rows+=("${r[@]}")
	else
		read -r k m <<<"${cells[$i]}"
		row "$k" "$m" - FAIL - - - - - - - - "cell died without a result"
	fi
	if [[ -f $results/$i.failures ]]; then
		mapfile -t r <"$results/$i.failures"
		failures+=("${r[@]}")
	fi
done

# ---- report -------------------------------------------------------------

bad=0
for r in "${rows[@]}"; do [[ $r == *"|FAIL|"* ]] && bad=1; done

if ((${#failures[@]})); then
	echo
	echo "==================== failing output ===================="
	declare -A shown=()
	for f in "${failures[@]}"; do
		IFS='|' read -r label log job <<<"$f"
		if [[ -z $job ]]; then
			# A test binary that did not build: the compiler's words, once
			# for all the cells it left without tests.
			[[ -n ${shown[$log]:-} ]] && continue
			shown[$log]=1
			echo "---- $(basename "$log" .build.log) tests for $(basename "$(dirname "$log")") did not build (full log: $log)"
			sed -n '1,25p' "$log"
			continue
		fi
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
fmt='%-42s %-11s %-6s %-6s %4s %4s %4s %6s %6s %6s %7s %7s  %s\n'
# shellcheck disable=SC2059
printf "$fmt" KERNEL MODE SUITE RESULT PASS FAIL SKIP RUN_S CELL_S BOOT_S QUIET_S MS/EXEC NOTE
for r in "${rows[@]}"; do
	IFS='|' read -r -a f <<<"$r"
	# shellcheck disable=SC2059
	printf "$fmt" "${f[@]}"
done
echo "QUIET_S: the suite's longest time without progress (stopped at ${job_idle}s); MS/EXEC: its slowest storm"
# A retried cell failed once: the emulator's fault or the project's, it is a
# defect to find, even when the second boot passed.
retried=()
for r in "${rows[@]}"; do
	[[ $r == *"boot "[0-9]", boot "[0-9]" failed: "* ]] || continue
	IFS='|' read -r -a f <<<"$r"
	retried+=("${f[0]%% (*} ${f[1]}")
done
mapfile -t retried < <(printf '%s\n' "${retried[@]}" | sed '/^$/d' | sort -u)
echo
echo "total: $((SECONDS - start_all))s (cells: ${cells_secs}s, $max_jobs at a time, slowdown ${slowdown}x); logs: $logs"
failed_rows=0
for r in "${rows[@]}"; do [[ $r == *"|FAIL|"* ]] && failed_rows=$((failed_rows + 1)); done
if ((${#retried[@]})); then
	line="retried cells: ${#retried[@]} ($(IFS=,; echo "${retried[*]}" | sed 's/,/, /g')): a retry is a defect to fix, see the first attempt's log"
else
	line="retried cells: 0"
fi
echo "$line"
# VMTEST_SUMMARY: a file that receives the one-line outcome (make ci prints it last).
[[ -n ${VMTEST_SUMMARY:-} ]] && echo "${#rows[@]} rows, $failed_rows failed; $line; ${cells_secs}s for the cells" >"$VMTEST_SUMMARY"
exit "$bad"
