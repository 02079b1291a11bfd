#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The booted-system test (make systemtest): installs the .deb into a real
# Debian 12 with systemd, journald and rsyslog, booted under qemu with each of
# Debian's 6.1 and 6.12 kernels, and checks what an operator relies on:
# the unit becomes active because READY=1 arrived, failed execs reach the
# journal (MESSAGE_ID, EXECFAIL_*, OBJECT_PID) and rsyslog, reloads (valid and
# broken), restart, remove and purge; and, first, an upgrade from the
# previous release (below, prev_release) with the operator's conffile and
# spool kept and the service restarted on the new binary. The checks are
# vmtest/system/guest.sh; this script builds and caches the rootfs, boots,
# and prints one line per check per kernel.
#
# Settings (environment):
#   SYSTEMTEST_KERNELS  kernel series to boot (default "6.1 6.12")
#   SYSTEMTEST_UPGRADE_ON the series whose guest upgrades from the previous
#                       release first (default 6.1)
#   SYSTEMTEST_IDLE     seconds a guest may print nothing (kernel messages
#                       aside) before it counts as hung (default 300)
#   SYSTEMTEST_TIMEOUT  seconds one boot may take at most (default 2400): a
#                       cap for a guest that prints forever; the deadline
#                       that matters follows progress (SYSTEMTEST_IDLE)
#   SYSTEMTEST_JOBS     kernels booted at the same time (default 2, one per
#                       core of the machines here)
#   SYSTEMTEST_SLOWDOWN N (default 1): each guest gets about 1/N of the CPU
#                       (qemu.sh -S), as on a machine N times slower
#   SYSTEMTEST_LOGS     where console logs go (default dist/systemtest/<time>)
#   EXECFAILD_CACHE     cache for kernels and the rootfs (default /var/cache/execfaild)
#   VMTEST_VERBOSE=1    copy the guest console to stderr while it runs
# Outside CI a missing prerequisite skips the test with a reason; with
# CI=true it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
t_start=$(date +%s)

cache_root=${EXECFAILD_CACHE:-/var/cache/execfaild}
cache=$cache_root/system
kernels=${SYSTEMTEST_KERNELS:-6.1 6.12}
timeout=${SYSTEMTEST_TIMEOUT:-2400}
idle=${SYSTEMTEST_IDLE:-300}
max_jobs=${SYSTEMTEST_JOBS:-2}
slowdown=${SYSTEMTEST_SLOWDOWN:-1}
logs=${SYSTEMTEST_LOGS:-$root/dist/systemtest/$(date -u +%Y%m%dT%H%M%SZ)}

unmet() {
	if [[ ${CI:-} == true ]]; then
		echo "systemtest: FAIL: $1" >&2
		exit 1
	fi
	echo "systemtest: skipped: $1"
	exit 0
}

((EUID == 0)) || unmet "needs root (mmdebstrap and a root-owned initramfs)"
for tool in mmdebstrap qemu-system-x86_64 cpio zstd dpkg-parsechangelog; do
	command -v "$tool" >/dev/null || unmet "$tool not installed (run .ci/install-deps)"
done
version=$(dpkg-parsechangelog -l debian/changelog -SVersion)
deb=$root/dist/execfaild_${version}_amd64.deb
[[ -r $deb ]] || unmet "$deb missing (run make deb)"

# The previous release, which the guest installs first and upgrades from:
# 98cd1df is the commit package 0.1.0-1 was built from, the last release
# before this one. Move it forward when a release is made. Built once from
# that commit (git archive, not the work tree) and cached by commit.
prev_release=98cd1df72bc80e2a2d08ad831877108bff23c83f
# The kernel whose guest runs the upgrade (Debian 12's: where a .deb of the
# previous release is installed today); the other goes straight to the
# fresh install, so the two boots, run side by side, end closer together.
upgrade_on=${SYSTEMTEST_UPGRADE_ON:-6.1}
t=$(date +%s)
prev_deb=$(REF=$prev_release EXECFAILD_CACHE=$cache_root bash packaging/build-deb.sh) ||
	{ echo "systemtest: FAIL: the previous release ($prev_release) did not build" >&2; exit 1; }
if [[ -n $prev_deb ]]; then
	echo "systemtest: upgrading from $(basename "$prev_deb") ($(($(date +%s) - t))s to build or find it)"
else
	echo "systemtest: the upgrade from the previous release is not tested (reason above)"
fi

# --- rootfs, cached ---------------------------------------------------------
# Everything the guest needs is in it: there is no network inside the guest,
# so the .deb's dependencies and the checks' tools (jq; perl-base is
# essential) must already be installed. Documentation is left out to keep
# the initramfs small.
suite=bookworm
mirror=${SYSTEMTEST_MIRROR:-http://deb.debian.org/debian}
include=systemd-sysv,rsyslog,jq,procps,logrotate
mmopts=(
	--variant=minbase --include="$include"
	--dpkgopt='path-exclude=/usr/share/man/*'
	--dpkgopt='path-exclude=/usr/share/doc/*'
	--dpkgopt='path-include=/usr/share/doc/*/copyright'
	--dpkgopt='path-exclude=/usr/share/locale/*'
	--dpkgopt='path-exclude=/usr/share/info/*'
)
key=$(printf '%s\n' "$suite" "$mirror" "${mmopts[@]}" | sha256sum | cut -c1-16)
base=$cache/rootfs-$suite-$key.cpio.zst
mkdir -p "$cache" "$logs"
if [[ ! -s $base ]]; then
	echo "systemtest: building the $suite rootfs (mmdebstrap, cached as $base)"
	t=$(date +%s)
	tmp=$(mktemp -d "$cache/.rootfs.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	if ! mmdebstrap --quiet "${mmopts[@]}" "$suite" "$tmp/root" "$mirror" >"$logs/mmdebstrap.log" 2>&1; then
		tail -n 20 "$logs/mmdebstrap.log" >&2
		echo "systemtest: FAIL: mmdebstrap could not build the rootfs (log: $logs/mmdebstrap.log)" >&2
		exit 1
	fi
	bash vmtest/initramfs.sh --zstd "$tmp/root" "$tmp/rootfs.cpio.zst"
	mv "$tmp/rootfs.cpio.zst" "$base"
	rm -rf "$tmp"
	trap - EXIT
	echo "systemtest: rootfs built in $(($(date +%s) - t))s ($(du -h "$base" | cut -f1))"
fi

# --- per-run overlay: the .deb, the checks, and boot adjustments ----------------
# Appended to the cached rootfs as a second cpio archive; the kernel unpacks
# both, later files winning.
work=$(mktemp -d /tmp/execfaild-systemtest.XXXXXX)
trap 'rm -rf "$work"' EXIT
ov=$work/overlay
install -D -m 0644 "$deb" "$ov/root/execfaild.deb"
[[ -z $prev_deb ]] || install -D -m 0644 "$prev_deb" "$ov/root/execfaild-prev.deb"
install -D -m 0755 vmtest/system/guest.sh "$ov/usr/local/sbin/execfaild-systemtest"
for f in base.toml filtered.toml broken.toml spool.toml huge.toml file.toml; do
	install -D -m 0644 "vmtest/system/$f" "$ov/usr/local/share/execfaild-systemtest/$f"
done
install -D -m 0644 vmtest/system/execfaild-systemtest.service "$ov/etc/systemd/system/execfaild-systemtest.service"
mkdir -p "$ov/etc/systemd/system/multi-user.target.wants"
ln -s ../execfaild-systemtest.service "$ov/etc/systemd/system/multi-user.target.wants/execfaild-systemtest.service"
install -D -m 0644 vmtest/system/rsyslog-execfaild.conf "$ov/etc/rsyslog.d/execfaild-systemtest.conf"
# No udev in the guest: gettys would wait for tty devices that never appear.
# firstboot would prompt on the console; logind needs D-Bus, which is absent.
for unit in serial-getty@ttyS0.service getty@tty1.service systemd-firstboot.service systemd-logind.service; do
	ln -s /dev/null "$ov/etc/systemd/system/$unit"
done
# Under software emulation the BPF verifier runs many times slower than on
# hardware; only the start deadline is relaxed, the shipped unit is
# otherwise used as it is.
mkdir -p "$ov/etc/systemd/system/execfaild.service.d"
printf '[Service]\nTimeoutStartSec=5min\n' >"$ov/etc/systemd/system/execfaild.service.d/emulation.conf"
echo systest >"$ov/etc/hostname"
# A fixed machine id: an empty one would make this a "first boot".
echo 5ba1c0de5ba1c0de5ba1c0de5ba1c0de >"$ov/etc/machine-id"
bash vmtest/initramfs.sh --zstd "$ov" "$work/overlay.cpio.zst"
cat "$base" "$work/overlay.cpio.zst" >"$work/initrd"

# --- boot each kernel -----------------------------------------------------------
# The kernels boot side by side (SYSTEMTEST_JOBS at a time), each guest on
# one vCPU; their results are read in order once all are done.
# One vCPU: with two, attaching on 6.12 under TCG once hit an int3 oops
# in syscall exit while the kernel live-patched its tracepoint branch
# (cross-CPU code modification, which TCG emulates imperfectly).
# The kernels are fetched first, one after another: the fetches share apt
# configurations.
declare -A kernel_of
for series in $kernels; do
	kernel_of[$series]=$(bash vmtest/kernels.sh "$series") || kernel_of[$series]=
done
boot() {
	local series=$1 kernel=${kernel_of[$1]} log=$logs/console-$1.log t rc=0
	if [[ -z $kernel ]]; then
		echo nokernel >"$work/rc-$series"
		return
	fi
	echo "systemtest: booting $series ($(basename "$kernel")), console log $log"
	t=$(date +%s)
	local extra=
	[[ -n $prev_deb && $series == "$upgrade_on" ]] && extra=" execfaild.upgrade"
	bash vmtest/qemu.sh -k "$kernel" -i "$work/initrd" -l "$log" -t "$timeout" -q "$idle" -S "$slowdown" -m 2G -c 1 \
		-a "rdinit=/lib/systemd/systemd quiet systemd.show_status=error$extra" || rc=$?
	echo "$rc $(($(date +%s) - t))" >"$work/rc-$series"
}
for series in $kernels; do
	while (($(jobs -rp | wc -l) >= max_jobs)); do wait -n || true; done
	boot "$series" &
done
wait || true

declare -A verdict detail
checks=()
failures=0 passes=0
for series in $kernels; do
	read -r rc wall <"$work/rc-$series"
	if [[ $rc == nokernel ]]; then
		echo "systemtest: FAIL: no $series kernel (vmtest/kernels.sh $series)" >&2
		failures=$((failures + 1))
		continue
	fi
	log=$logs/console-$series.log
	# The console is a serial line: strip CRs and anything before CHECK.
	begin=$(tr -d '\r' <"$log" | grep -a -o 'SYSTEMTEST BEGIN.*' | head -n 1 || true)
	end=$(tr -d '\r' <"$log" | grep -a -o 'SYSTEMTEST END.*' | head -n 1 || true)
	while IFS= read -r line; do
		read -r _ name v rest <<<"$line"
		[[ -v "verdict[$name]" ]] || checks+=("$name")
		verdict[$name]+="$series=$v "
		detail[$series.$name]=$rest
		if [[ $v == PASS ]]; then passes=$((passes + 1)); else failures=$((failures + 1)); fi
		printf 'systemtest %-5s %-24s %s %s\n' "$series" "$name" "$v" "$rest"
	done < <(tr -d '\r' <"$log" | grep -a -o 'CHECK [a-z0-9-]* \(PASS\|FAIL\) .*' || true)
	if [[ -z $end ]]; then
		failures=$((failures + 1))
		why="guest never finished the checks"
		((rc == 124)) && why="guest did not power off within ${timeout}s"
		((rc == 120)) && why="guest printed nothing for ${idle}s"
		printf 'systemtest %-5s %-24s FAIL %s (qemu rc=%d; last console lines below)\n' "$series" "boot" "$why" "$rc"
		tr -d '\r' <"$log" | tail -n 25 | sed 's/^/    /'
	fi
	if [[ -n $prev_deb && $series == "$upgrade_on" && -n $end && ! -v "detail[$series.upgrade-restarted]" ]]; then
		failures=$((failures + 1))
		printf 'systemtest %-5s %-24s FAIL %s\n' "$series" "upgrade" "the guest was asked to upgrade from the previous release and reported no upgrade check"
	fi
	echo "systemtest: $series: ${begin:-no BEGIN marker} | ${end:-no END marker} | boot+test wall ${wall}s"
done

echo
printf '%-24s' check
for series in $kernels; do printf ' %-6s' "$series"; done
echo
for c in "${checks[@]}"; do
	printf '%-24s' "$c"
	for series in $kernels; do
		# A check only one kernel runs (the upgrade) shows "-" for the other.
		v=$(grep -o "$series=[A-Z]*" <<<"${verdict[$c]}" | head -n 1 | cut -d= -f2) || v=
		printf ' %-6s' "${v:--}"
	done
	echo
done
echo "systemtest: total ${SECONDS}s (since $(date -u -d @"$t_start" +%H:%M:%S)); logs in $logs"
echo "systemtest: $passes passed, $failures failed"
((failures == 0))
