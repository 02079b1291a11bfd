#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The booted-system checks, run inside the guest by execfaild-systemtest.service
# after systemd, journald and rsyslog are up. Every check prints one line
#   CHECK <name> PASS|FAIL <detail>
# on the console; the host collects them. A failed check does not stop the
# ones after it unless they cannot mean anything without it.
set -uo pipefail
export LC_ALL=C.UTF-8 SYSTEMD_PAGER= SYSTEMD_COLORS=0

deb=/root/execfaild.deb
conf=/etc/execfaild.toml
tests=/usr/local/share/execfaild-systemtest
# Every failed-exec entry carries it as EXECFAIL_MESSAGE_ID; MESSAGE_ID is its
# cause's own id (or this one for a failure without a cause).
catalog_id=ce8d01c1beb44bcc809ec2c048e10010
catalog_entries=19 # one per cause, one for failures without a cause, one for test-sinks
failed=0

check() { # name PASS|FAIL detail...
	local name=$1 verdict=$2
	shift 2
	# One console line per check, whatever the detail holds.
	local detail=${*//$'\n'/ }
	[[ $verdict == PASS ]] || failed=$((failed + 1))
	printf 'CHECK %s %s %s\n' "$name" "$verdict" "${detail:0:400}"
}
ok() { # name condition-exit-status detail
	if (($2 == 0)); then check "$1" PASS "$3"; else check "$1" FAIL "$3"; fi
}

# progress prints what changes while the daemon works: its STATUS= line
# (counts, refreshed every few seconds) and its newest journal entry.
progress() {
	systemctl show -P StatusText execfaild 2>/dev/null
	journalctl -u execfaild -n 1 -o cat --no-pager --show-cursor 2>/dev/null | tail -n 1
}

# wait_for IDLE CMD... waits for CMD to succeed, and gives up once the
# daemon has shown no progress for IDLE seconds: the deadline follows
# progress, so a machine slower than this one takes longer but does not
# fail, while a stuck daemon is given up on soon. Ten times IDLE caps it
# whatever happens. The bounds are on the clock, not on tries: a command
# that takes seconds (journalctl over a storm's entries, under emulation)
# must not stretch them past the boot's deadline, where every check after
# it would go unreported.
wait_for() {
	local idle=$1 now since cap last cur
	shift
	since=$(date +%s)
	cap=$((since + idle * 10))
	last=$(progress)
	while :; do
		"$@" && return 0
		now=$(date +%s)
		cur=$(progress)
		[[ $cur == "$last" ]] || last=$cur since=$now
		((now - since < idle && now < cap)) || return 1
		sleep 0.3
	done
}

# fail_exec PATH ARGV... runs a process whose execve fails with PATH and
# exactly ARGV (argv[0] included) and prints that process's pid.
fail_exec() {
	perl -e 'exec {$ARGV[0]} @ARGV[1..$#ARGV]; exit 0' -- "$@" &
	local pid=$!
	wait "$pid"
	echo "$pid"
}

# journal_entry PATH prints the newest execfaild entry (JSON) whose
# EXECFAIL_PATH is PATH; journalctl shows a value that is not printable
# UTF-8 as an array of bytes, so the path is compared in both forms.
journal_entry() {
	local bytes
	bytes=$(perl -e 'print "[", join(",", unpack("C*", $ARGV[0])), "]"' -- "$1")
	journalctl -u execfaild -o json --no-pager 2>/dev/null |
		jq -c --arg p "$1" --argjson b "$bytes" 'select(.EXECFAIL_MESSAGE_ID == "'$catalog_id'" and (.EXECFAIL_PATH == $p or .EXECFAIL_PATH == $b))' |
		tail -n 1
}
has_entry() { [[ -n $(journal_entry "$1") ]]; }

# reload_and_wait FILE installs FILE as the configuration, reloads and waits
# for the daemon to log the outcome; prints that log line and returns
# systemctl reload's exit status (99 when the daemon logged no outcome).
reload_and_wait() {
	local cursor rc=0
	cursor=$(journalctl -u execfaild -n 0 --show-cursor --no-pager | sed -n 's/^-- cursor: //p')
	install -m 0600 "$1" "$conf"
	systemctl reload execfaild 2>/dev/null || rc=$?
	reload_logged() {
		reload_line=$(journalctl -u execfaild --after-cursor="$cursor" -o cat --no-pager | grep -E 'configuration reloaded|reload rejected' | tail -n 1)
		[[ -n $reload_line ]] && [[ $(systemctl is-active execfaild) == active ]]
	}
	wait_for 30 reload_logged || return 99
	echo "$reload_line"
	return "$rc"
}

mainpid() { systemctl show -P MainPID execfaild; }
ms() { echo $(($(date +%s%N) / 1000000)); }

# The daemon's own log goes to the console too: when a check fails, the
# console log is all the host keeps.
journalctl -f -n 0 -u execfaild -o short-monotonic --no-pager | sed -u 's/^/  daemon: /' &
follow=$!
trap 'kill $follow 2>/dev/null' EXIT

echo "SYSTEMTEST BEGIN kernel=$(uname -r) uptime=$(cut -d' ' -f1 /proc/uptime)"

# --- upgrade from the previous release -------------------------------------
# The previous release (vmtest/system.sh pins it) is installed and configured
# as an operator would: a webhook whose receiver is down, so failures wait in
# the spool. Then this build is installed over it the way an unattended
# upgrade does it, and nothing the operator had may be lost: the edited
# conffile, the spooled failures, the service (restarted on the new binary).
# Afterwards the package is purged, so every check below starts from a
# fresh install as before.
# One kernel runs it (vmtest/system.sh says which: execfaild.upgrade on the
# command line); the package's upgrade path does not depend on the kernel.
prev_deb=/root/execfaild-prev.deb
if [[ -r $prev_deb ]] && grep -qw execfaild.upgrade /proc/cmdline; then
	t_up=$(ms)
	prev_ver=$(dpkg-deb -f $prev_deb Version) new_ver=$(dpkg-deb -f $deb Version)
	out=$(dpkg -i $prev_deb 2>&1) || echo "  upgrade: dpkg -i $prev_deb failed: $out"
	wait_for 330 bash -c '[[ $(systemctl is-active execfaild) != activating ]]'
	# The operator's edit: the journal (which the previous release's file
	# did not enable) and a webhook whose receiver is not up yet.
	hook_port=8719 hook_log=/tmp/systest/upgrade-received
	cat >>$conf <<-TOML

		# Added by the operator.
		[[sink.journal]]
		name = "journal"

		[[sink.webhook]]
		name = "upgrade"
		url = "http://127.0.0.1:$hook_port/hook"
		timeout = "2s"
	TOML
	mkdir -p /tmp/systest
	cp $conf /tmp/systest/upgrade-operator.toml
	line=$(reload_and_wait /tmp/systest/upgrade-operator.toml)
	rc=$?
	upool=/var/lib/execfaild/spool/webhook-upgrade
	# spooled_paths prints how many spool entries hold each path.
	spooled_paths() { cat $upool/*.json 2>/dev/null | jq -r .path | sort | uniq -c; }
	ups=(/tmp/systest/upgrade-spooled-1 /tmp/systest/upgrade-spooled-2 /tmp/systest/upgrade-spooled-3)
	for p in "${ups[@]}"; do fail_exec "$p" x >/dev/null; done
	all_spooled() {
		local p
		for p in "${ups[@]}"; do grep -qxE " *1 $p" <<<"$(spooled_paths)" || return 1; done
	}
	wait_for 60 all_spooled
	spooled_before=$(spooled_paths)
	echo "  upgrade: $prev_ver installed, operator's reload rc=$rc ($line); spool before the upgrade: $(tr '\n' ' ' <<<"$spooled_before") at uptime $(cut -d' ' -f1 /proc/uptime)"
	pid_old=$(mainpid) exe_old=$(stat -Lc %d:%i /proc/$(mainpid)/exe 2>/dev/null)

	# An unattended upgrade: no prompt, and a conffile the operator changed
	# is kept (--force-confold) while one they left alone takes the new
	# version (--force-confdef): the dpkg options unattended-upgrades and
	# `apt-get -o Dpkg::Options::=...` pass. The package's own file lands
	# beside the kept one as .dpkg-dist. dpkg rather than apt-get: the same
	# maintainer scripts run, without apt's minute of work under emulation.
	t1=$(ms)
	out=$(DEBIAN_FRONTEND=noninteractive dpkg -i --force-confdef --force-confold $deb 2>&1)
	urc=$?
	wait_for 330 bash -c '[[ $(systemctl is-active execfaild) != activating ]]'
	t_install=$(($(ms) - t1))

	# The edit survived; the shipped file, which changed between the two
	# releases, is beside it as .dpkg-dist (and absent if it had not).
	shipped_new=$(dpkg-deb --fsys-tarfile $deb | tar -xOf - ./etc/execfaild.toml)
	shipped_old=$(dpkg-deb --fsys-tarfile $prev_deb | tar -xOf - ./etc/execfaild.toml)
	if [[ $shipped_new != "$shipped_old" ]]; then
		dist_ok() { [[ -f $conf.dpkg-dist && $(cat $conf.dpkg-dist) == "$shipped_new" ]]; }
		dist_note="shipped file changed: $conf.dpkg-dist $(dist_ok && echo "holds the new one" || echo "missing or not the new one")"
	else
		dist_ok() { [[ ! -e $conf.dpkg-dist ]]; }
		dist_note="shipped file unchanged: $conf.dpkg-dist $(dist_ok && echo absent || echo present)"
	fi
	ok upgrade-conffile-kept "$([[ $urc == 0 ]] && cmp -s $conf /tmp/systest/upgrade-operator.toml && dist_ok && [[ $(stat -c '%a %U' $conf) == '600 root' ]]; echo $?)" "dpkg -i rc=$urc in ${t_install}ms; $conf $(cmp -s $conf /tmp/systest/upgrade-operator.toml && echo "is the operator's" || echo "is NOT the operator's") ($(stat -c '%a %U' $conf)); $dist_note; dpkg: $(tail -n 1 <<<"$out")"

	# Restarted on the new binary: a new process whose executable is the
	# installed file (not the replaced one) and says it is the new version.
	pid_new=$(mainpid) state=$(systemctl is-active execfaild)
	exe_new=$(stat -Lc %d:%i /proc/$pid_new/exe 2>/dev/null)
	exe_link=$(readlink /proc/$pid_new/exe 2>/dev/null)
	ran_ver=$(/proc/$pid_new/exe version 2>/dev/null)
	installed_ver=$(dpkg-query -W -f '${Version}' execfaild)
	ok upgrade-restarted "$([[ $state == active && $pid_new != "$pid_old" && $pid_new != 0 && $exe_link == /usr/sbin/execfaild && $exe_new == "$(stat -c %d:%i /usr/sbin/execfaild)" && $exe_new != "$exe_old" && $ran_ver == "execfaild $new_ver" && $installed_ver == "$new_ver" ]] && dpkg --compare-versions "$new_ver" gt "$prev_ver"; echo $?)" "$prev_ver -> $installed_ver: is-active=$state MainPID $pid_old -> $pid_new, exe $exe_link ($exe_old -> $exe_new), the running binary says \"$ran_ver\", want \"execfaild $new_ver\""

	# Right after the upgrade, while the receiver is still down: the new
	# daemon reports to the journal, and its webhook queues behind the
	# spool it inherited.
	pu=/tmp/systest/upgrade-after
	fail_exec "$pu" x >/dev/null
	wait_for 30 has_entry "$pu"
	journal_rc=$?
	spooled_after=$(spooled_paths)
	status_up=$(execfaild status 2>&1 | tr '\n' '|')

	# The receiver comes up: everything spooled before the upgrade and the
	# failure after it arrive, each once (the first token of a line is the
	# X-Execfaild-Delivery id, the rest the body).
	perl -MIO::Socket::INET -e '
		my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $ARGV[1], Listen => 16, ReuseAddr => 1) or die "listen: $!\n";
		while (my $c = $s->accept) {
			my ($len, $id) = (0, "-");
			while (my $l = <$c>) {
				$l =~ s/\r?\n\z//;
				last if $l eq "";
				$len = $1 if $l =~ /^content-length:\s*(\d+)/i;
				$id = $1 if $l =~ /^x-execfaild-delivery:\s*(\S+)/i;
			}
			my $body = "";
			read($c, $body, $len) if $len;
			open(my $f, ">>", $ARGV[0]) or die "$ARGV[0]: $!\n";
			print $f "$id $body\n";
			close $f;
			print $c "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
			close $c;
		}' $hook_log $hook_port &
	hook=$!
	# The sink's backoff has grown to minutes by now; a reload (same file)
	# builds the sink afresh, which replays its spool at once.
	line=$(reload_and_wait /tmp/systest/upgrade-operator.toml)
	echo "  upgrade: receiver up, reloaded ($line) at uptime $(cut -d' ' -f1 /proc/uptime)"
	received_paths() { cut -d' ' -f2- $hook_log 2>/dev/null | jq -r .path 2>/dev/null | sort | uniq -c; }
	all_received() {
		local p
		for p in "${ups[@]}" "$pu"; do grep -qE "^ *[0-9]+ $p\$" <<<"$(received_paths)" || return 1; done
	}
	wait_for 60 all_received
	received=$(received_paths)
	# exactly_once LIST: every path of ups in LIST once.
	exactly_once() {
		local p
		for p in "${ups[@]}"; do grep -qxE " *1 $p" <<<"$1" || return 1; done
	}
	left=$(spooled_paths)
	ok upgrade-spool-kept "$(exactly_once "$spooled_before" && exactly_once "$spooled_after" && exactly_once "$received" && ! grep -qF upgrade-spooled <<<"$left"; echo $?)" "spool (entries per path) before: $(tr '\n' ' ' <<<"$spooled_before")| after the upgrade: $(tr '\n' ' ' <<<"$spooled_after")| delivered once the receiver was up: $(tr '\n' ' ' <<<"$received")| left: $(grep -c . <<<"$left") entries"

	# Loss counters: the previous release's at its stop (its last status)
	# and the new daemon's now.
	st=$(systemctl show -P StatusText execfaild)
	stop_old=$(journalctl -u execfaild _PID="$pid_old" -o cat --no-pager | grep -E '^level=INFO msg=stopped' | tail -n 1)
	nolost='lost 0 failures, 0 markers, 0 undecodable'
	ok upgrade-nothing-lost "$([[ $journal_rc == 0 && $st == *"$nolost"* && $stop_old == *"$nolost"* ]] && grep -qxE " *1 $pu" <<<"$received"; echo $?)" "EXECFAIL_PATH=$pu in the journal: $([[ $journal_rc == 0 ]] && echo yes || echo no), delivered to the webhook: $(grep -E " $pu\$" <<<"$received" | awk '{print $1}')x; $prev_ver at its stop: ${stop_old:-no stop line}; now STATUS=$st; execfaild status: $status_up"
	kill $hook 2>/dev/null
	wait $hook 2>/dev/null

	out=$(dpkg -P execfaild 2>&1) || check upgrade-purge FAIL "dpkg -P after the upgrade: $out"
	systemctl daemon-reload
	echo "  upgrade: phase took $((($(ms) - t_up) / 1000))s"
fi

# --- install ---------------------------------------------------------------
# The checks below read only what the journal holds from here on, not
# what the upgrade above left in it. A time, not a cursor: journalctl 252
# with --after-cursor and a filter the cursor's own entry does not match
# skips the first entry that does.
journalctl --sync
fresh_since=@$(date +%s.%N | cut -c1-17)
t0=$(ms)
out=$(dpkg -i "$deb" 2>&1)
rc=$?
ok install $rc "dpkg -i rc=$rc in $(($(ms) - t0))ms: $(tail -n 2 <<<"$out")"

# Type=notify: "active" is only reached after READY=1 arrived. The daemon
# may log nothing while the verifier runs (slow under emulation): waited
# for as long as the unit's own start deadline (TimeoutStartSec, 5 min
# here), after which systemd ends the activation itself.
wait_for 330 bash -c '[[ $(systemctl is-active execfaild) != activating ]]'
state=$(systemctl is-active execfaild)
status_text=$(systemctl show -P StatusText execfaild)
ok active "$([[ $state == active ]]; echo $?)" "is-active=$state $(($(ms) - t0))ms after dpkg -i began"
if [[ $state != active ]]; then
	journalctl -u execfaild --no-pager -n 30 | sed 's/^/  journal: /'
fi
ok status-line "$([[ $status_text == mode\ * ]]; echo $?)" "STATUS= \"$status_text\""
ok enabled "$([[ $(systemctl is-enabled execfaild) == enabled ]]; echo $?)" "is-enabled=$(systemctl is-enabled execfaild)"
ok conffile-mode "$([[ $(stat -c '%a %U' $conf) == '600 root' ]]; echo $?)" "$(stat -c '%a %U' $conf)"
ok catalog "$(journalctl --list-catalog 2>/dev/null | grep -q "$catalog_id"; echo $?)" "MESSAGE_ID $catalog_id in journalctl --list-catalog"
listed=$(journalctl --list-catalog 2>/dev/null | grep -c ' execfaild: ')
ok catalog-causes "$([[ $listed == "$catalog_entries" ]]; echo $?)" "$listed execfaild entries in journalctl --list-catalog, want $catalog_entries"
# The test rootfs drops /usr/share/man at unpack (dpkg path-exclude), so the
# package's contents are read instead of the filesystem.
# The listing is read whole first: grep -q stops reading at its match, and
# under pipefail dpkg-deb's SIGPIPE would fail the check at random.
contents=$(dpkg-deb -c "$deb")
ok man-page "$(grep -q 'usr/share/man/man8/execfaild.8.gz' <<<"$contents" && grep -q 'usr/share/man/man5/execfaild.toml.5.gz' <<<"$contents"; echo $?)" "execfaild(8) and execfaild.toml(5) in the package"
exposure=$(systemd-analyze security execfaild 2>/dev/null | sed -n 's/.*Overall exposure level for execfaild.service: //p')
# The unit runs as a dynamic user with ambient capabilities; that is what
# brings the score to 2.5, and a change that loosens it fails here.
ok exposure "$(awk -v e="${exposure%% *}" 'BEGIN { exit !(e != "" && e + 0 <= 2.5) }'; echo $?)" "systemd-analyze security (running unit): ${exposure:-unknown}, want <= 2.5"
# Not root. The unit grants CAP_SYS_ADMIN(21), CAP_SYS_PTRACE(19),
# CAP_DAC_READ_SEARCH(2), CAP_PERFMON(38) and CAP_BPF(39) for attaching;
# once attached the daemon keeps only CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH
# (reading /proc and root-only files), plus CAP_BPF where a trial showed the
# kernel refuses its map reads or flush program without it - effective and
# permitted alike, nothing ambient or inheritable, in every thread, and what
# it logged it kept.
mp=$(mainpid)
uid=$(awk '/^Uid:/ { print $3 }' /proc/$mp/status 2>/dev/null)
capeff=$(awk '/^CapEff:/ { print $2 }' /proc/$mp/status 2>/dev/null)
capsets=$(cat /proc/$mp/task/*/status 2>/dev/null | awk '/^Cap(Eff|Prm|Amb|Inh):/ { print $1 $2 }' | sort -u | tr '\n' ' ')
kept=$(journalctl -u execfaild -b --since="$fresh_since" -o cat 2>/dev/null | sed -n 's/.*capabilities after attaching.* kept=\([A-Z_,]*\).*/\1/p' | tail -n 1)
case $kept in
CAP_DAC_READ_SEARCH,CAP_SYS_PTRACE) want_caps=0000000000080004 ;;
CAP_DAC_READ_SEARCH,CAP_SYS_PTRACE,CAP_BPF) want_caps=0000008000080004 ;;
*) want_caps="logged:${kept:-nothing}" ;;
esac
ok unprivileged "$([[ -n $uid && $uid != 0 && $capsets == "CapAmb:0000000000000000 CapEff:$want_caps CapInh:0000000000000000 CapPrm:$want_caps " ]]; echo $?)" "MainPID $mp euid=${uid:-unknown} kept=${kept:-?} CapEff=${capeff:-unknown} threads: $capsets user=$(stat -c %U /proc/$mp 2>/dev/null)"

# --- journal fields with the packaged configuration --------------------------
mkdir -p /tmp/systest
p1=/tmp/systest/enoent-packaged
pid=$(fail_exec "$p1" enoent-packaged --flag)
if wait_for 30 has_entry "$p1"; then
	e=$(journal_entry "$p1")
	got=$(jq -r '[.EXECFAIL_ERROR, .ERRNO, .OBJECT_PID, .EXECFAIL_PID, .EXECFAIL_SYSCALL, .EXECFAIL_ARGC, .PRIORITY] | join(" ")' <<<"$e")
	want="ENOENT 2 $pid $pid execve 2"
	ok journal-fields "$([[ $got == "$want "* ]]; echo $?)" "ERROR ERRNO OBJECT_PID PID SYSCALL ARGC PRIORITY: got \"$got\" want \"$want …\""
	ok journal-message "$(jq -e '.MESSAGE | type == "string" and contains("enoent-packaged")' <<<"$e" >/dev/null; echo $?)" "MESSAGE=$(jq -c .MESSAGE <<<"$e")"
	# The catalog's Subject with the entry's own fields filled in: its
	# cause's entry, or the general one naming the errno.
	subject=$(journalctl -u execfaild -x --no-pager --since="$fresh_since" EXECFAIL_MESSAGE_ID=$catalog_id | grep -a -m1 -E 'Subject: A program could not be executed( \([a-z-]+\): |: ENOENT)')
	ok journal-catalog-x "$([[ -n $subject ]]; echo $?)" "journalctl -x: ${subject:-no catalog text}"
	# Both kernels have BPF trampolines: inside the sandbox the daemon must
	# still get the richest mode, not fall back to tracepoints only.
	st=$(systemctl show -P StatusText execfaild)
	ok sandbox-fentry "$([[ $st == 'mode fentry;'* ]]; echo $?)" "$st; stage=$(jq -r '.EXECFAIL_STAGE // "absent"' <<<"$e")"
else
	check journal-fields FAIL "no journal entry with EXECFAIL_PATH=$p1 (no progress for 30s)"
	journalctl -u execfaild --no-pager -n 30 | sed 's/^/  journal: /'
fi

# The daemon is not root: reading /proc/<pid>/{exe,cwd,fd/0} of root's
# processes rests on CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH. The caller
# stays alive after its failed exec so its /proc entry is there to read.
pa=/tmp/systest/enoent-alive
(cd /tmp/systest && exec perl -e 'exec {$ARGV[0]} @ARGV; sleep 10' -- "$pa" x </dev/null) &
alive=$!
if wait_for 30 has_entry "$pa"; then
	# journald derives OBJECT_* from OBJECT_PID only for a root sender; the
	# daemon sends them itself.
	got=$(journal_entry "$pa" | jq -r '[.EXECFAIL_EXE, .EXECFAIL_CWD, .EXECFAIL_STDIN_PATH, .EXECFAIL_PARENT_EXE, .OBJECT_EXE] | map(. // "absent") | join(" ")')
	ok sandbox-proc "$([[ $got == /usr/bin/perl*' /tmp/systest /dev/null /usr/bin/bash /usr/bin/perl'* ]]; echo $?)" "EXE CWD STDIN_PATH PARENT_EXE OBJECT_EXE: got \"$got\""
else
	check sandbox-proc FAIL "no journal entry with EXECFAIL_PATH=$pa (no progress for 30s)"
fi
kill "$alive" 2>/dev/null
wait "$alive" 2>/dev/null

# --- sinks add, never replace ---------------------------------------------------
# An operator enables Slack and a webhook in the shipped file: the journal
# keeps reporting beside them (a file with only [[sink.slack]] used to stop
# all journal reporting). Their receivers are down; that is the spool's test.
{
	cat $conf
	printf '\n[[sink.slack]]\nurl = "http://127.0.0.1:9/slack"\ntimeout = "2s"\n'
	printf '\n[[sink.webhook]]\nurl = "http://127.0.0.1:9/hook"\ntimeout = "2s"\n'
} >/tmp/systest/sinks-added.toml
line=$(reload_and_wait /tmp/systest/sinks-added.toml)
rc=$?
ps=/tmp/systest/enoent-sinks-added
fail_exec "$ps" x >/dev/null
if ((rc == 0)) && wait_for 30 has_entry "$ps"; then
	check sinks-add PASS "slack and webhook added to the shipped file: $line; EXECFAIL_PATH=$ps in the journal"
else
	check sinks-add FAIL "reload rc=$rc ($line); no journal entry for $ps after adding slack and webhook sinks"
fi

# --- test configuration: journal + rsyslog over TCP -------------------------
line=$(reload_and_wait $tests/base.toml)
ok reload-base $? "$line"

p2=/tmp/systest/enoent-syslog
pid=$(fail_exec "$p2" enoent-syslog)
wait_for 30 has_entry "$p2"
ok journal-after-reload $? "EXECFAIL_PATH=$p2"
if wait_for 30 grep -qF "path=\"$p2\"" /var/log/execfaild-5424.log; then
	l=$(grep -F "path=\"$p2\"" /var/log/execfaild-5424.log | tail -n 1)
	# <PRI>1 TIMESTAMP HOST execfaild PROCID MSGID [execfail@32473 ...]
	re='^<[0-9]+>1 [^ ]+ [^ ]+ execfaild [0-9]+ [^ ]+ \[execfail@32473 '
	ok syslog-rfc5424 "$([[ $l =~ $re && $l == *"pid=\"$pid\""* && $l == *'error="ENOENT"'* ]]; echo $?)" "${l:0:300}"
else
	check syslog-rfc5424 FAIL "nothing for $p2 in /var/log/execfaild-5424.log: $(tail -c 300 /var/log/execfaild-5424.log 2>/dev/null)"
fi

# Hostile bytes in path and argv: quotes, CR, LF, ']', backslash, non-UTF-8.
hp=$'/tmp/systest/h "q\' \r\n]\xff/prog'
pid=$(fail_exec "$hp" $'h"ost]ile' $'cr\rlf\n' 'back\slash' $'\xfe\xff' 'end]')
if wait_for 30 has_entry "$hp"; then
	e=$(journal_entry "$hp")
	argv=$(jq -r '.EXECFAIL_ARGV | if type == "string" then . else "NOT-A-STRING" end' <<<"$e")
	ok journal-hostile "$([[ $(jq -r .OBJECT_PID <<<"$e") == "$pid" && $(jq -r .EXECFAIL_ARGC <<<"$e") == 5 && $argv != *$'\n'* && $argv != *$'\r'* && $argv == *'end]'* ]]; echo $?)" "exact path bytes matched; ARGC=$(jq -r .EXECFAIL_ARGC <<<"$e") ARGV=$(jq -c .EXECFAIL_ARGV <<<"$e")"
else
	check journal-hostile FAIL "no entry whose EXECFAIL_PATH has the exact hostile bytes; newest: $(journalctl -u execfaild -o json -n 1 --no-pager | jq -c .EXECFAIL_PATH)"
fi
if wait_for 30 grep -qF 'end\]' /var/log/execfaild-5424.log; then
	l=$(grep -F 'end\]' /var/log/execfaild-5424.log | tail -n 1)
	# One record per message, SD-PARAM escapes in place.
	ok syslog-hostile "$([[ $l == *'[execfail@32473 '* && $l == *"pid=\"$pid\""* && $l == *'h\"ost\]ile'* ]]; echo $?)" "${l:0:300}"
else
	check syslog-hostile FAIL "no record with end\\] in /var/log/execfaild-5424.log"
fi

# --- test-sinks: unmistakably a test in every sink ----------------------------
# Its own MESSAGE_ID (and catalog entry), EXECFAIL_TEST=true, a MESSAGE that
# says so; test="true" first in the syslog SD.
out=$(execfaild test-sinks 2>&1)
rc=$?
test_id=7e57c0de1a9f4b6e8d2f0c3b5a6e9d41
test_entry() { journalctl -o json --no-pager MESSAGE_ID=$test_id 2>/dev/null | tail -n 1; }
test_logged() { [[ -n $(test_entry) ]] && grep -qF '[execfail@32473 test="true" ' /var/log/execfaild-5424.log; }
if ((rc == 0)) && wait_for 30 test_logged; then
	e=$(test_entry)
	# Sent by the running daemon (its unit), not by this root shell.
	ok test-sinks-marked "$([[ $(jq -r .EXECFAIL_TEST <<<"$e") == true && $(jq -r .MESSAGE <<<"$e") == 'TEST (execfaild test-sinks, not a real failure): '* && $(jq -r ._SYSTEMD_UNIT <<<"$e") == execfaild.service && $out == *'through the running daemon'* ]]; echo $?)" "$(tr '\n' ' ' <<<"$out"); MESSAGE=$(jq -c .MESSAGE <<<"$e" | cut -c1-120); $(journalctl -x --no-pager MESSAGE_ID=$test_id | grep -a -m1 'Subject:')"
else
	check test-sinks-marked FAIL "test-sinks rc=$rc: $(tr '\n' ' ' <<<"$out"); journal: $(test_entry | cut -c1-200); syslog: $(grep -c 'test="true"' /var/log/execfaild-5424.log)"
fi

# --- valid reload that changes behaviour ------------------------------------
pid_before=$(mainpid)
line=$(reload_and_wait $tests/filtered.toml)
rc=$?
ok reload-valid "$([[ $rc == 0 && $line == *'configuration reloaded'* && $(mainpid) == "$pid_before" ]]; echo $?)" "$line; MainPID $pid_before -> $(mainpid)"
touch /tmp/systest/not-executable-1 && chmod 0644 /tmp/systest/not-executable-1
fail_exec /tmp/systest/not-executable-1 x >/dev/null
p3=/tmp/systest/enoent-after-filter
fail_exec "$p3" x >/dev/null
# Failures go through the pipeline in order: once the later ENOENT is in
# the journal, the EACCES before it was decided on.
if wait_for 30 has_entry "$p3"; then
	! has_entry /tmp/systest/not-executable-1
	ok reload-takes-effect $? "EACCES excluded, ENOENT after it reported"
else
	check reload-takes-effect FAIL "ENOENT after the reload not reported"
fi

# --- broken reload ------------------------------------------------------------
line=$(reload_and_wait $tests/broken.toml)
rc=$?
# systemctl reload fails on a file the daemon refuses (it used to exit 0).
ok reload-broken-rejected "$([[ $rc != 0 && $rc != 99 && $line == *'reload rejected'*'/etc/execfaild.toml:5'*'exclude_errnos'* ]]; echo $?)" "systemctl reload rc=$rc; $line"
# The daemon's own errors carry priority 3, so journalctl -p err finds them.
perr=$(journalctl -u execfaild -p err --since="$fresh_since" -o cat --no-pager | grep -F 'reload rejected' | tail -n 1)
ok journal-priority "$([[ -n $perr ]]; echo $?)" "journalctl -p err: ${perr:-no reload rejected line}"
# ... and reach the journal natively: the error is a field of its own.
# The daemon's line, not the one `execfaild reload` (ExecReload) printed.
rej=$(journalctl -u execfaild -o json --since="$fresh_since" --no-pager 2>/dev/null | jq -c --arg pid "$(systemctl show -P MainPID execfaild)" 'select(._PID == $pid and ((.MESSAGE | tostring) | contains("reload rejected"))) | {p: .PRIORITY, t: ._TRANSPORT, e: .ERROR, id: .SYSLOG_IDENTIFIER}' | tail -n 1)
ok journal-own-fields "$([[ $(jq -r .t <<<"$rej") == journal && $(jq -r .p <<<"$rej") == 3 && $(jq -r .id <<<"$rej") == execfaild && $(jq -r '.e // empty' <<<"$rej") == *'/etc/execfaild.toml:5'*'exclude_errnos'* ]]; echo $?)" "reload rejected entry: ${rej:-none}"
ok reload-broken-still-up "$([[ $(systemctl is-active execfaild) == active && $(mainpid) == "$pid_before" ]]; echo $?)" "is-active=$(systemctl is-active execfaild) MainPID=$(mainpid)"
touch /tmp/systest/not-executable-2 && chmod 0644 /tmp/systest/not-executable-2
fail_exec /tmp/systest/not-executable-2 x >/dev/null
p4=/tmp/systest/enoent-after-broken
fail_exec "$p4" x >/dev/null
if wait_for 30 has_entry "$p4"; then
	! has_entry /tmp/systest/not-executable-2
	ok old-config-kept $? "after the rejected reload: ENOENT reported (the broken file excluded it), EACCES still excluded"
else
	check old-config-kept FAIL "ENOENT after the rejected reload not reported"
fi

# --- a sink that is down: spooled, not lost -----------------------------------
line=$(reload_and_wait $tests/spool.toml)
p6=/tmp/systest/enoent-while-webhook-down
fail_exec "$p6" x >/dev/null
spool=/var/lib/execfaild/spool/webhook-down
# One JSON file per held notification, owned by the daemon's dynamic user.
spooled() { grep -rlsF "\"path\":\"$p6\"" $spool/ >/dev/null; }
if wait_for 60 spooled; then
	f=$(grep -rlsF "\"path\":\"$p6\"" $spool/ | head -n 1)
	owner=$(stat -c %u "$f")
	ok spool-written "$([[ $owner == "$(awk '/^Uid:/ { print $3 }' /proc/$(mainpid)/status)" && $owner != 0 ]]; echo $?)" "$line; $f owner uid $owner"
else
	check spool-written FAIL "$line; nothing for $p6 under $spool: $(ls -lnR /var/lib/execfaild/ 2>&1 | tail -n 5)"
fi

# STATUS= and execfaild status name the sink that fails, not only sums.
status_named() {
	status_out=$(execfaild status 2>&1) && [[ $status_out == *'webhook/down'*'retrying'* && $status_out == *'journal/journal'*' ok '* &&
		$(systemctl show -P StatusText execfaild) == *'webhook/down retrying, '*' spooled'* ]]
}
if wait_for 30 status_named; then
	check status-sinks PASS "STATUS=$(systemctl show -P StatusText execfaild); execfaild status: $(tr '\n' '|' <<<"$status_out")"
else
	check status-sinks FAIL "STATUS=$(systemctl show -P StatusText execfaild); execfaild status: $(tr '\n' '|' <<<"$status_out")"
fi

# --- the file sink under the unit: its default path, rotated without loss -----
# /var/log is read-only under ProtectSystem=strict; the default path is in
# the unit's LogsDirectory=. logrotate (the package's file) moves it away;
# the daemon creates the next one itself, as its own user.
line=$(reload_and_wait $tests/file.toml)
rc=$?
fsink=/var/log/execfaild/failures.jsonl
infile() { grep -qsF "\"path\":\"$1\"" "$2"; }
# test-sinks as root goes through the daemon: the file it creates is the
# service's, not a root-owned one the service could not append to.
tout=$(execfaild test-sinks 2>&1)
trc=$?
towner=$(stat -c %u $fsink 2>/dev/null)
ok test-sinks-as-service "$([[ $trc == 0 && $towner == "$(awk '/^Uid:/ { print $3 }' /proc/$(mainpid)/status)" && $towner != 0 ]] && grep -qF '"test":true' $fsink; echo $?)" "test-sinks rc=$trc ($(tr '\n' ' ' <<<"$tout")); $fsink owner uid ${towner:-none}"
pf1=/tmp/systest/enoent-file-before-rotation pf2=/tmp/systest/enoent-file-after-rotation
fail_exec "$pf1" x >/dev/null
if ((rc == 0)) && wait_for 30 infile "$pf1" $fsink; then
	out=$(logrotate -f /etc/logrotate.d/execfaild 2>&1)
	lrc=$?
	fail_exec "$pf2" x >/dev/null
	wait_for 30 infile "$pf2" $fsink
	owner=$(stat -c %u $fsink 2>/dev/null)
	ok file-sink-rotated "$([[ $lrc == 0 ]] && infile "$pf1" $fsink.1 && ! infile "$pf1" $fsink && infile "$pf2" $fsink && [[ $owner == "$(awk '/^Uid:/ { print $3 }' /proc/$(mainpid)/status)" && $owner != 0 ]]; echo $?)" "logrotate rc=$lrc $out; $(ls -ln /var/log/execfaild/ | tail -n +2 | awk '{print $1, $3, $NF}' | tr '\n' ' ')"
else
	check file-sink-rotated FAIL "reload rc=$rc ($line); nothing for $pf1 in $fsink: $(ls -lnR /var/log/execfaild/ 2>&1 | tail -n 4); $(systemctl show -P StatusText execfaild)"
fi

# --- a start with a refused file: failed, not restarting ----------------------
# The daemon exits 78 (EX_CONFIG), which RestartPreventExitStatus= keeps from
# restarting: the unit goes straight to failed (a restart on the way would
# show as "activating"), with the reason in systemctl status.
install -m 0600 $tests/broken.toml $conf
rc=0
systemctl restart execfaild 2>/dev/null || rc=$?
state=$(systemctl is-active execfaild)
code=$(systemctl show -P ExecMainStatus execfaild)
st=$(systemctl status execfaild --no-pager -l -n 5 2>&1)
ok start-refused "$([[ $rc != 0 && $state == failed && $code == 78 && $st == *'/etc/execfaild.toml:5'*'exclude_errnos'* ]]; echo $?)" "systemctl restart rc=$rc, is-active=$state, exit status $code; status: $(grep -aE 'Status:|exclude_errnos' <<<"$st" | head -n 2)"

# --- restart ------------------------------------------------------------------
install -m 0600 $tests/base.toml $conf
systemctl restart execfaild
state=$(systemctl is-active execfaild)
ok restart "$([[ $state == active && $(mainpid) != "$pid_before" ]]; echo $?)" "is-active=$state MainPID $pid_before -> $(mainpid)"
p5=/tmp/systest/enoent-after-restart
fail_exec "$p5" x >/dev/null
wait_for 30 has_entry "$p5"
ok reported-after-restart $? "EXECFAIL_PATH=$p5"
# --- memory: the unit's MemoryMax= holds in a storm, and is enforced -----------
# The packaged limit, the bound the daemon computed from its configuration,
# and the cgroup's peak after 2,000 unique and 20,000 repeated failures.
memmax=$(systemctl show -P MemoryMax execfaild)
memline=$(journalctl -u execfaild -b --since="$fresh_since" -o cat --no-pager | grep -E '^level=INFO msg=memory ' | tail -n 1)
ok memory-max "$([[ $memmax == 536870912 && $memline == *'limit="512 MiB"'* ]]; echo $?)" "MemoryMax=$memmax; daemon: ${memline:-no memory line logged}"
restarts_before=$(systemctl show -P NRestarts execfaild)
# The console copy of the daemon's log pauses meanwhile: a serial console
# under emulation cannot keep up with a journal line per unique failure.
kill $follow 2>/dev/null
# The storm is waited for by the daemon's own count: a failure's first
# notification may wait behind the 2,000 the rate limit holds back.
# status_num BEFORE AFTER prints the number STATUS= shows between the two.
status_num() { systemctl show -P StatusText execfaild | sed -n "s/.*$1\([0-9]*\)$2.*/\1/p"; }
storm_seen() { (($(status_num '; ' ' failed execs seen') + 0 >= $1)); }
seen_before=$(status_num '; ' ' failed execs seen') lost_before=$(status_num '; lost ' ' failures')
perl -e 'for my $i (1 .. 2000) { exec {"/tmp/systest/storm-unique-$i"} "x" } for (1 .. 20000) { exec {"/tmp/systest/storm-repeat"} "x" }' 2>/dev/null
t_storm=$(ms)
wait_for 120 storm_seen $((seen_before + 22000))
t_storm=$((($(ms) - t_storm) / 1000))
journalctl -f -n 0 -u execfaild -o short-monotonic --no-pager | sed -u 's/^/  daemon: /' &
follow=$!
cg=/sys/fs/cgroup/system.slice/execfaild.service
peak=$(cat $cg/memory.peak 2>/dev/null || echo unknown)
ok memory-storm "$([[ $(systemctl is-active execfaild) == active && $(systemctl show -P NRestarts execfaild) == "$restarts_before" && $peak =~ ^[0-9]+$ && $peak -lt $memmax ]]; echo $?)" "after 22000 failures: active, NRestarts $restarts_before -> $(systemctl show -P NRestarts execfaild), memory.peak $((${peak//[^0-9]/0} / 1048576)) MiB of $((memmax / 1048576)) MiB (current $(($(cat $cg/memory.current 2>/dev/null || echo 0) / 1048576)) MiB)"
# Every failure of the storm is counted, none lost.
seen=$(status_num '; ' ' failed execs seen') lost=$(status_num '; lost ' ' failures')
ok storm-counted "$([[ -n $seen && -n $lost && $seen -ge $((seen_before + 22000)) && $lost == "$lost_before" ]]; echo $?)" "failed execs seen $seen_before -> ${seen:-?} (22000 provoked, ${t_storm}s), lost $lost_before -> ${lost:-?}: $(systemctl show -P StatusText execfaild)"
out=$(execfaild check-config $tests/huge.toml 2>&1)
rc=$?
ok memory-check-config "$([[ $rc != 0 && $out == *'probe.ring_buffer_bytes 1 GiB'*'MemoryMax='* ]]; echo $?)" "rc=$rc: $out"
line=$(reload_and_wait $tests/huge.toml)
rc=$?
ok memory-reload-rejected "$([[ $rc != 0 && $rc != 99 && $line == *'reload rejected'*'probe.ring_buffer_bytes 1 GiB'*'MemoryMax='* && $(systemctl is-active execfaild) == active ]]; echo $?)" "systemctl reload rc=$rc; $line"

stop_line=$(journalctl -u execfaild --since="$fresh_since" -o cat --no-pager | grep -E '^level=INFO msg=stopped' | tail -n 1)
ok clean-stop "$([[ -n $stop_line ]]; echo $?)" "${stop_line:-no stop line logged}"

# --- remove and purge ---------------------------------------------------------
out=$(dpkg -r execfaild 2>&1)
rc=$?
state=$(systemctl is-active execfaild)
ok remove "$([[ $rc == 0 && $state != active && ! -e /usr/sbin/execfaild && -e $conf ]]; echo $?)" "dpkg -r rc=$rc is-active=$state binary-gone=$([[ -e /usr/sbin/execfaild ]] && echo no || echo yes) conffile-kept=$([[ -e $conf ]] && echo yes || echo no)"
out=$(dpkg -P execfaild 2>&1)
rc=$?
systemctl daemon-reload
load=$(systemctl show -P LoadState execfaild)
# DynamicUser keeps the state in /var/lib/private/execfaild behind a
# /var/lib/execfaild symlink: both must go.
gone() { [[ ! -e $1 && ! -L $1 ]]; }
ok purge "$([[ $rc == 0 && $load == not-found ]] && gone $conf && gone /var/lib/execfaild && gone /var/lib/private/execfaild; echo $?)" "dpkg -P rc=$rc LoadState=$load conffile-gone=$(gone $conf && echo yes || echo no) statedir-gone=$(gone /var/lib/execfaild && gone /var/lib/private/execfaild && echo yes || echo no)"

echo "SYSTEMTEST END failed=$failed uptime=$(cut -d' ' -f1 /proc/uptime) install-to-end=$((($(ms) - t0) / 1000))s"
exit 0
