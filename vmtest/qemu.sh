#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Boots a kernel and initramfs under qemu (software emulation) and waits,
# with a deadline, until the guest powers off.
#
# Usage:
#   vmtest/qemu.sh -k VMLINUZ -i INITRD -l LOG [-t SECONDS] [-m MEM] [-c CPUS]
#                  [-A ARCH] [-a "KERNEL ARGS"] [-- EXTRA QEMU ARGS...]
#
#   -k  kernel image (e.g. "$(vmtest/kernels.sh 6.12)")
#   -i  initramfs (e.g. from vmtest/initramfs.sh)
#   -l  file that receives the serial console (kernel log and guest output)
#   -t  deadline in seconds for the whole boot (default 600): a hung guest
#       fails instead of eating CI's time
#   -q  idle deadline in seconds (default 0: none): the guest is stopped
#       once its console has shown no new line for this long, kernel
#       messages ("[  12.345678] ...") not counted, since a wedged guest
#       may print soft-lockup reports forever. With -q, -t is only a cap
#       far above any healthy boot: the deadline follows progress, so a
#       slower machine takes longer without failing
#   -m  guest memory (default 2G); -c  vCPUs (default 2)
#   -S  slowdown N (default 1): N-1 busy loops run beside the guest for its
#       lifetime, so it gets about 1/N of the CPU: a machine N times slower,
#       to prove that the deadlines follow progress
#   -A  guest architecture: amd64 (default; qemu-system-x86_64) or arm64
#       (qemu-system-aarch64, -machine virt, console on its PL011 ttyAMA0)
#   -a  extra kernel command line words, appended after
#       "console=<serial> panic=-1" (e.g. "rdinit=/sbin/init", or env words
#       and "-- cmd args" for vmtest's /init)
#   --  everything after is passed to qemu unchanged (disks, NICs, ...)
#
# Exit status: 0 when the guest powered off (or its kernel panicked, which
# panic=-1 plus -no-reboot also turns into an exit) in time, 124 when the
# deadline passed, 120 when the idle deadline did, qemu's own status
# otherwise. Whether the guest's work
# succeeded is for the caller to read from the log. VMTEST_VERBOSE=1 also
# copies the console to stderr while the guest runs.
#
# KVM is never used: on these machines it exists but hangs guests, so the
# guest runs under TCG (-accel tcg -cpu max), which is slow but faithful;
# arm64 guests are always emulated anyway.
set -euo pipefail

kernel='' initrd='' log='' timeout=600 idle=0 slowdown=1 mem=2G cpus=2 append='' arch=amd64
while (($#)); do
	case $1 in
	-k) kernel=$2; shift 2 ;;
	-i) initrd=$2; shift 2 ;;
	-l) log=$2; shift 2 ;;
	-t) timeout=$2; shift 2 ;;
	-q) idle=$2; shift 2 ;;
	-S) slowdown=$2; shift 2 ;;
	-m) mem=$2; shift 2 ;;
	-c) cpus=$2; shift 2 ;;
	-A) arch=$2; shift 2 ;;
	-a) append=$2; shift 2 ;;
	--) shift; break ;;
	*) echo "qemu.sh: unknown option '$1' (see the header of $0)" >&2; exit 2 ;;
	esac
done
for v in kernel initrd log; do
	if [[ -z ${!v} ]]; then
		echo "qemu.sh: -${v:0:1} ($v) is required" >&2
		exit 2
	fi
done
for f in "$kernel" "$initrd"; do
	[[ -r $f ]] || { echo "qemu.sh: cannot read $f" >&2; exit 2; }
done

case $arch in
amd64) qemu=qemu-system-x86_64 machine=() cpu=max console=ttyS0 ;;
# pauth-impdef: TCG computes pointer-authentication codes with a cheap
# implementation-defined hash instead of QARMA, which otherwise dominates
# the guest's run time; the guest cannot tell the difference.
arm64) qemu=qemu-system-aarch64 machine=(-machine virt) cpu=max,pauth-impdef=on console=ttyAMA0 ;;
*) echo "qemu.sh: -A must be amd64 or arm64, not '$arch'" >&2; exit 2 ;;
esac
command -v "$qemu" >/dev/null || { echo "qemu.sh: $qemu not installed (run .ci/install-deps)" >&2; exit 2; }

args=(
	"${machine[@]}" -accel tcg -cpu "$cpu" -m "$mem" -smp "$cpus"
	-nodefaults -no-user-config -display none -no-reboot
	-serial "file:$log"
	-kernel "$kernel" -initrd "$initrd"
	-append "console=$console panic=-1 $append"
	"$@"
)
: >"$log"
tailpid=
if [[ ${VMTEST_VERBOSE:-} == 1 ]]; then
	tail -n +1 -f "$log" >&2 &
	tailpid=$!
fi
# lines: the console's lines that are not kernel messages.
lines() { grep -acv '^\[ *[0-9][0-9]*\.[0-9]*\]' "$log" || true; }
[[ $slowdown =~ ^[1-9]$ ]] || { echo "qemu.sh: -S must be 1 to 9, not '$slowdown'" >&2; exit 2; }
hogs=()
for ((h = 1; h < slowdown; h++)); do
	(trap 'exit 0' TERM; while :; do :; done) &
	hogs+=($!)
done
# The busy loops end with this script, however it ends.
trap '((${#hogs[@]})) && kill "${hogs[@]}" 2>/dev/null' EXIT
trap 'exit 143' TERM INT
rc=0
# -k: qemu that ignores SIGTERM while wedged still goes away.
timeout -k 10 "$timeout" "$qemu" "${args[@]}" </dev/null &
qpid=$!
stalled=0
if ((idle > 0)); then
	seen=-1 since=$SECONDS
	while kill -0 "$qpid" 2>/dev/null; do
		sleep 2
		n=$(lines)
		if ((n != seen)); then
			seen=$n since=$SECONDS
		elif ((SECONDS - since >= idle)); then
			stalled=1
			echo "qemu.sh: guest printed nothing for ${idle}s after line $n of its console: stopping it (log: $log)" >&2
			kill "$qpid" 2>/dev/null
			break
		fi
	done
fi
wait "$qpid" || rc=$?
[[ -n $tailpid ]] && kill "$tailpid" 2>/dev/null
if ((stalled)); then
	rc=120
elif ((rc == 124)); then
	echo "qemu.sh: guest did not power off within ${timeout}s (log: $log)" >&2
fi
exit "$rc"
