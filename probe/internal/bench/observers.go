// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// observer is one way of watching failed execs, started and stopped once
// per round.
type observer interface {
	name() string
	start() error
	// pid is the process whose CPU the observer's work is charged to; 0
	// when there is none.
	pid() int
	stop() error
	// counted is how many of workload w's failures (issued by the worker
	// process workerPID) the observer reported, and how many it said it
	// lost over the round; read after stop.
	counted(w workload, workerPID int) (counts, error)
}

// lossCounter is an observer whose count of lost failures can be read at
// any moment: read before and after each workload, what it lost is
// attributed to the workload it was lost in, not to the whole round.
type lossCounter interface {
	lostSoFar() (uint64, error)
	// lossLag is how long after a workload ends its losses may still
	// grow: the ledger reads until the count holds still that long.
	lossLag() time.Duration
}

type counts struct {
	known       bool
	seen, lost  uint64
	lostUnknown bool // the observer does not say what it lost
	// perWorkload: lost is this workload's alone (a lossCounter read
	// around it); otherwise the round's, all workloads and programs.
	perWorkload bool
}

// bare is nothing attached: the baseline.
type bare struct{}

func (*bare) name() string                          { return "bare" }
func (*bare) start() error                          { return nil }
func (*bare) pid() int                              { return 0 }
func (*bare) stop() error                           { return nil }
func (*bare) counted(workload, int) (counts, error) { return counts{}, nil }

// daemonObserver is `execfaild run` with a file sink, configured like a
// user would, started and stopped as systemd does (READY=1, SIGTERM).
type daemonObserver struct {
	label, bin, work string
	cmd              *exec.Cmd
	dir              string
	events           []byte
	stderr           strings.Builder
	// webhook, when set, is a loopback URL the daemon delivers to instead
	// of the file.
	webhook string
	// shipped: the file sink and global limit are left at their defaults.
	shipped bool
	metrics string
	exited  chan error
}

func (d *daemonObserver) name() string { return d.label }

func (d *daemonObserver) pid() int {
	if d.cmd == nil || d.cmd.Process == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

func (d *daemonObserver) start() error {
	dir, err := os.MkdirTemp("", "execfaild-bench-daemon-")
	if err != nil {
		return fmt.Errorf("daemon dir: %w", err)
	}
	d.dir = dir
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("metrics port: %w", err)
	}
	metrics := ln.Addr().String()
	ln.Close()
	cfg := fmt.Sprintf("[metrics]\nlisten = %q\n\n[spool]\ndir = %q\n\n", metrics, filepath.Join(dir, "spool"))
	if !d.shipped {
		// The global cap would fold what exceeds it into combined digests
		// without a path, like the sink's own limit (below).
		cfg += "[rate_limit]\nglobal_rate = \"off\"\n\n"
	}
	switch {
	case d.webhook != "":
		// Timing delivery, not limits: every failure goes out as it comes.
		cfg += fmt.Sprintf("[[sink.webhook]]\nurl = %q\n[sink.webhook.rate_limit]\nrate = \"off\"\n", d.webhook)
	case d.shipped:
		cfg += fmt.Sprintf("[[sink.file]]\npath = %q\n", filepath.Join(dir, "events.jsonl"))
	default:
		// Every failure on its own line (or in the kernel's or a PATH
		// search's count): a dedup table or rate limit would fold the
		// overflow of 200,000 distinct paths into combined digests that no
		// longer name a path, and the counts could not be told apart by
		// workload.
		cfg += fmt.Sprintf("[[sink.file]]\npath = %q\nqueue_size = 65536\n[sink.file.dedup]\nwindow = \"off\"\n[sink.file.rate_limit]\nrate = \"off\"\n",
			filepath.Join(dir, "events.jsonl"))
	}
	cfgPath := filepath.Join(dir, "execfaild.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return fmt.Errorf("daemon config: %w", err)
	}
	// READY=1 arrives once every probe is attached.
	sockPath := filepath.Join(dir, "notify")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notify socket: %w", err)
	}
	defer sock.Close()
	d.stderr.Reset()
	d.cmd = child(d.bin, "run", "--config", cfgPath)
	d.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sockPath, "STATE_DIRECTORY="+dir)
	d.cmd.Stderr = &d.stderr
	if err := d.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", d.bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- d.cmd.Wait() }()
	d.metrics = metrics
	d.exited = exited
	buf := make([]byte, 4096)
	sock.SetDeadline(time.Now().Add(60 * time.Second))
	for {
		n, _, err := sock.ReadFromUnix(buf)
		if err != nil {
			d.cmd.Process.Kill()
			return fmt.Errorf("%s never became ready: %w: %s", d.bin, err, lastLines(d.stderr.String()))
		}
		if strings.Contains("\n"+string(buf[:n])+"\n", "\nREADY=1\n") {
			return nil
		}
	}
}

func (d *daemonObserver) stop() error {
	if d.cmd == nil {
		return nil
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-d.exited:
	case <-time.After(60 * time.Second):
		d.cmd.Process.Kill()
		err = errors.New("did not stop within 60 s of SIGTERM")
	}
	d.cmd = nil
	if err != nil {
		return fmt.Errorf("%s: %w: %s", d.bin, err, lastLines(d.stderr.String()))
	}
	d.events, _ = os.ReadFile(filepath.Join(d.dir, "events.jsonl"))
	d.events = withSpooled(d.events, filepath.Join(d.dir, "spool"))
	os.RemoveAll(d.dir)
	return nil
}

// withSpooled appends to the file sink's lines the notifications waiting
// in the spool dir, one line each: what the sink could not take before the
// daemon stopped is delivered at its next start, counted, not lost.
func withSpooled(events []byte, dir string) []byte {
	spooled, _ := filepath.Glob(filepath.Join(dir, "*", "*.json"))
	for _, f := range spooled {
		var line bytes.Buffer
		if b, err := os.ReadFile(f); err == nil && json.Compact(&line, b) == nil {
			events = append(append(events, line.Bytes()...), '\n')
		}
	}
	return events
}

// counted sums the counts of the notifications about w's paths: a digest
// or a folded PATH search stands for count failures. What was lost comes
// from lostSoFar, around each workload.
func (d *daemonObserver) counted(w workload, _ int) (counts, error) {
	c := counts{known: true}
	sc := bufio.NewScanner(strings.NewReader(string(d.events)))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev struct {
			Path  string `json:"path"`
			Count uint64 `json:"count"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return c, fmt.Errorf("file sink line: %w", err)
		}
		if strings.HasPrefix(ev.Path, w.dir+"/") {
			c.seen += max(ev.Count, 1)
		}
	}
	return c, nil
}

// lostSoFar is what the probe counted of failures it will never report,
// any program's, since the daemon started: those the kernel could not hand
// over (counted as the failing exec returns) and the repeats the kernel
// counted of a failure whose own record was lost.
func (d *daemonObserver) lostSoFar() (uint64, error) {
	m, err := scrape(d.metrics)
	if err != nil {
		return 0, err
	}
	lost, ok := parseCounter(m, "probe_lost_failures_total")
	if !ok {
		return 0, errors.New("scrape: no probe_lost_failures_total in /metrics")
	}
	// Builds before it was exported counted orphans only internally.
	orphans, _ := parseCounter(m, "probe_orphan_repeats_total")
	return lost + orphans, nil
}

// lossLag: repeats are collected from the kernel a second apart while it
// holds any (probe/fold.go), and orphans are found only then.
func (d *daemonObserver) lossLag() time.Duration { return 1500 * time.Millisecond }

// scrapeRecords reads how many records the probe took in, any program's:
// failures, and the successes that end PATH searches.
func scrapeRecords(addr string) (failures, successes uint64, err error) {
	m, err := scrape(addr)
	if err != nil {
		return 0, 0, err
	}
	failures, ok1 := parseCounter(m, "probe_failures_total")
	successes, ok2 := parseCounter(m, "probe_successes_total")
	if !ok1 || !ok2 {
		return 0, 0, errors.New("scrape: no probe_failures_total or probe_successes_total in /metrics")
	}
	return failures, successes, nil
}

// metricsClient opens a connection per scrape and closes it after: an
// idle keep-alive connection would be the daemon's to serve, and a scrape
// should leave nothing behind that wakes it.
var metricsClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

// scrapeCounter reads one counter from the daemon's /metrics.
func scrapeCounter(addr, name string) (uint64, error) {
	m, err := scrape(addr)
	if err != nil {
		return 0, err
	}
	v, ok := parseCounter(m, name)
	if !ok {
		return 0, fmt.Errorf("scrape: no %s in /metrics", name)
	}
	return v, nil
}

// scrape reads the daemon's /metrics.
func scrape(addr string) (string, error) {
	resp, err := metricsClient.Get("http://" + addr + "/metrics")
	if err != nil {
		return "", fmt.Errorf("scrape: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("scrape: %w", err)
	}
	return string(b), nil
}

func parseCounter(metrics, name string) (uint64, bool) {
	for _, line := range strings.Split(metrics, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && strings.HasSuffix(f[0], "_"+name) {
			v, err := strconv.ParseFloat(f[1], 64)
			return uint64(v), err == nil
		}
	}
	return 0, false
}

// bpftraceObserver is the one-liner an operator would type: print every
// failed execve as it happens.
type bpftraceObserver struct {
	work  string
	cmd   *exec.Cmd
	out   string
	lines map[int]uint64
	lost  uint64
	errs  strings.Builder
}

const bpftraceProgram = `tracepoint:syscalls:sys_exit_execve /args->ret < 0/ { printf("%d %s %d\n", pid, comm, args->ret); }`

func (b *bpftraceObserver) name() string { return "bpftrace" }

func (b *bpftraceObserver) pid() int {
	if b.cmd == nil || b.cmd.Process == nil {
		return 0
	}
	return b.cmd.Process.Pid
}

func (b *bpftraceObserver) start() error {
	f, err := os.CreateTemp("", "execfaild-bench-bpftrace-")
	if err != nil {
		return fmt.Errorf("bpftrace output: %w", err)
	}
	b.out = f.Name()
	b.errs.Reset()
	b.cmd = child("bpftrace", "-e", bpftraceProgram)
	b.cmd.Stdout = f
	b.cmd.Stderr = &b.errs
	if err := b.cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start bpftrace: %w", err)
	}
	f.Close()
	// bpftrace announces "Attaching 1 probe..." before it attaches; wait
	// until its program is loaded and attached.
	for deadline := time.Now().Add(60 * time.Second); ; {
		if tracepointAttached() {
			time.Sleep(200 * time.Millisecond)
			return nil
		}
		if time.Now().After(deadline) {
			b.cmd.Process.Kill()
			b.cmd.Wait()
			return fmt.Errorf("bpftrace did not attach: %s", lastLines(b.errs.String()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tracepointAttached tells whether some BPF program is attached to
// sys_exit_execve (bpftrace's, as nothing else runs meanwhile).
func tracepointAttached() bool {
	out, err := exec.Command("bpftool", "perf", "list").Output()
	if err != nil {
		// Without bpftool, give bpftrace the time it usually needs.
		time.Sleep(3 * time.Second)
		return true
	}
	return strings.Contains(string(out), "sys_exit_execve")
}

func (b *bpftraceObserver) stop() error {
	if b.cmd == nil {
		return nil
	}
	b.cmd.Process.Signal(syscall.SIGINT)
	err := b.cmd.Wait()
	b.cmd = nil
	defer os.Remove(b.out)
	if err != nil {
		return fmt.Errorf("bpftrace: %w: %s", err, lastLines(b.errs.String()))
	}
	f, err := os.Open(b.out)
	if err != nil {
		return fmt.Errorf("bpftrace output: %w", err)
	}
	defer f.Close()
	b.lines = map[int]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pid, _, ok := strings.Cut(sc.Text(), " ")
		if n, err := strconv.Atoi(pid); ok && err == nil {
			b.lines[n]++
		}
	}
	// bpftrace warns "Lost N events" when its buffer overflowed.
	b.lost = 0
	for _, line := range strings.Split(b.errs.String(), "\n") {
		var n uint64
		if _, err := fmt.Sscanf(strings.TrimSpace(line), "Lost %d events", &n); err == nil {
			b.lost += n
		}
	}
	return nil
}

func (b *bpftraceObserver) counted(_ workload, workerPID int) (counts, error) {
	return counts{known: true, seen: b.lines[workerPID], lost: b.lost}, nil
}

// auditObserver is auditd with a rule for failed execve, run with a
// configuration of its own: its log in the bench's scratch directory,
// never rotated (the records are counted afterwards), no plugins. The
// host's audit state is put back after each round: the rule removed, the
// enabled flag as it was (an enabled audit subsystem slows every process
// created later, and every later measurement with it), auditd stopped.
type auditObserver struct {
	work    string
	dir     string
	daemon  *exec.Cmd
	enabled string // the host's "auditctl -s" enabled value before the round
	recs    map[int]uint64
	lost    uint64
}

const auditKey = "execfaild-bench"

var auditRule = []string{"always,exit", "-F", "arch=b64", "-S", "execve", "-F", "success=0", "-k", auditKey}

// newAuditObserver returns nil, saying why, when auditd cannot be
// measured without touching an audit setup the host already has.
func newAuditObserver(work string) (*auditObserver, string) {
	st := auditStatus()
	switch {
	case st["enabled"] == "":
		return nil, "auditctl -s answered nothing"
	case st["enabled"] == "2":
		return nil, "the audit configuration is locked (enabled 2)"
	case st["pid"] != "" && st["pid"] != "0":
		return nil, "an audit daemon is already running (pid " + st["pid"] + "); the bench leaves it alone"
	}
	return &auditObserver{work: work}, ""
}

func (a *auditObserver) name() string { return "auditd" }

func (a *auditObserver) pid() int {
	if a.daemon == nil || a.daemon.Process == nil {
		return 0
	}
	return a.daemon.Process.Pid
}

// auditdConf is Debian's auditd.conf with the log moved into dir, no
// rotation, and no action on disk space or errors.
const auditdConf = `local_events = yes
write_logs = yes
log_file = %[1]s/audit.log
log_group = root
log_format = ENRICHED
flush = INCREMENTAL_ASYNC
freq = 50
max_log_file = 100000
num_logs = 0
priority_boost = 4
name_format = NONE
max_log_file_action = IGNORE
space_left = 2
space_left_action = IGNORE
admin_space_left = 1
admin_space_left_action = IGNORE
disk_full_action = IGNORE
disk_error_action = IGNORE
q_depth = 2000
overflow_action = IGNORE
max_restarts = 10
plugin_dir = %[1]s/plugins.d
end_of_event_timeout = 2
`

func (a *auditObserver) start() error {
	dir, err := os.MkdirTemp(a.work, "audit-")
	if err != nil {
		return fmt.Errorf("audit dir: %w", err)
	}
	a.dir = dir
	if err := os.Mkdir(filepath.Join(dir, "plugins.d"), 0o750); err != nil {
		return fmt.Errorf("audit plugins dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "auditd.conf"), []byte(fmt.Sprintf(auditdConf, dir)), 0o640); err != nil {
		return fmt.Errorf("auditd.conf: %w", err)
	}
	a.enabled = auditStatus()["enabled"]
	a.lost = auditLost()
	// -n: stay in the foreground, so this process owns it.
	a.daemon = child("auditd", "-n", "-c", dir)
	if err := a.daemon.Start(); err != nil {
		return fmt.Errorf("start auditd: %w", err)
	}
	for deadline := time.Now().Add(30 * time.Second); auditStatus()["pid"] != strconv.Itoa(a.daemon.Process.Pid); {
		if time.Now().After(deadline) {
			a.stop()
			return errors.New("auditd did not register with the kernel within 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, args := range [][]string{{"-e", "1"}, append([]string{"-a"}, auditRule...)} {
		if out, err := exec.Command("auditctl", args...).CombinedOutput(); err != nil {
			a.stop()
			return fmt.Errorf("auditctl %s: %w: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

func (a *auditObserver) stop() error {
	errs := a.restore()
	if a.daemon != nil {
		a.daemon.Process.Signal(syscall.SIGTERM)
		a.daemon.Wait()
		a.daemon = nil
	}
	a.lost = auditLost() - a.lost
	recs, err := countAuditRecords(filepath.Join(a.dir, "audit.log"))
	os.RemoveAll(a.dir)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	a.recs = recs
	return errors.Join(errs...)
}

// restore removes the rule and sets the enabled flag back.
func (a *auditObserver) restore() []error {
	var errs []error
	exec.Command("auditctl", append([]string{"-d"}, auditRule...)...).Run()
	if a.enabled != "" {
		if out, err := exec.Command("auditctl", "-e", a.enabled).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("auditctl -e %s: %w: %s", a.enabled, err, out))
		}
	}
	return errs
}

// countAuditRecords counts the bench rule's SYSCALL records per pid.
func countAuditRecords(log string) (map[int]uint64, error) {
	f, err := os.Open(log)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	defer f.Close()
	recs := map[int]uint64{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "type=SYSCALL") || !strings.Contains(line, `key="`+auditKey+`"`) {
			continue
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "pid="); ok {
				n, _ := strconv.Atoi(v)
				recs[n]++
			}
		}
	}
	return recs, sc.Err()
}

// auditStatus is "auditctl -s" as a map.
func auditStatus() map[string]string {
	out, _ := exec.Command("auditctl", "-s").Output()
	st := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok {
			st[k] = strings.TrimSpace(v)
		}
	}
	return st
}

// auditLost is the kernel's count of audit records it dropped.
func auditLost() uint64 {
	n, _ := strconv.ParseUint(auditStatus()["lost"], 10, 64)
	return n
}

// lostSoFar is the kernel's count of audit records it dropped.
func (a *auditObserver) lostSoFar() (uint64, error) {
	v := auditStatus()["lost"]
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("auditctl -s: lost %q: %w", v, err)
	}
	return n, nil
}

// lossLag: the kernel counts a dropped record as it drops it.
func (a *auditObserver) lossLag() time.Duration { return 0 }

func (a *auditObserver) counted(_ workload, workerPID int) (counts, error) {
	return counts{known: true, seen: a.recs[workerPID], lost: a.lost}, nil
}

// child is a command that dies with the bench, however the bench ends:
// an observer left running would go on slowing the host.
func child(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	return cmd
}

func lastLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}
