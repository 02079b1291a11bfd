// SPDX-License-Identifier: Apache-2.0

package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"

	"github.com/execfaild/execfaild/internal/poll"
	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/probe/event"
)

// fakeSource hands out what the test pushes, like the probe's blocking Read.
// After Drain it hands out its backlog, as the probe empties its ring
// buffer, then fails.
type fakeSource struct {
	ch        chan *event.Event
	done      chan struct{} // closed by Drain
	fail      chan error
	once      sync.Once
	closed    chan struct{}
	closeOnce sync.Once

	mu      sync.Mutex
	backlog []*event.Event
	loss    Loss
	// lossAtClose, when set, replaces loss at Close: the probe counts what
	// it could not drain only then.
	lossAtClose *Loss
	// closedEarly is set when Close came while the backlog was not empty.
	closedEarly bool
}

func newFakeSource() *fakeSource {
	return &fakeSource{ch: make(chan *event.Event), done: make(chan struct{}), fail: make(chan error, 1), closed: make(chan struct{})}
}

func (s *fakeSource) Next() (*event.Event, *event.Success, error) {
	select {
	case ev := <-s.ch:
		return ev, nil, nil
	case err := <-s.fail:
		return nil, nil, err
	case <-s.done:
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.backlog) > 0 {
			ev := s.backlog[0]
			s.backlog = s.backlog[1:]
			return ev, nil, nil
		}
		return nil, nil, errors.New("ring buffer drained")
	}
}

func (s *fakeSource) Drain(time.Time) { s.once.Do(func() { close(s.done) }) }

func (s *fakeSource) Close() error {
	s.Drain(time.Time{})
	s.closeOnce.Do(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.closedEarly = len(s.backlog) > 0
		if s.lossAtClose != nil {
			s.loss = *s.lossAtClose
		}
		close(s.closed)
	})
	return nil
}
func (s *fakeSource) Mode() string { return "fentry" }
func (s *fakeSource) Loss() Loss {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loss
}

// fakePipeline records calls. Handle blocks while gate is held, Reload
// until release is closed, so tests can stall each on purpose.
type fakePipeline struct {
	mu       sync.Mutex
	handled  []string
	reloads  []notify.Config
	closedAt int // len(handled) when Close was called, -1 before
	gate     sync.Mutex
	release  chan struct{}
	handledC chan string
	entered  chan struct{} // when set, Handle reports that it was called
	// queued and nextWake are what Stats says of work still to do.
	queued   int
	nextWake time.Time
}

func newFakePipeline() *fakePipeline {
	return &fakePipeline{closedAt: -1, handledC: make(chan string, 100)}
}

func (p *fakePipeline) Handle(ev *event.Event) {
	if p.entered != nil {
		p.entered <- struct{}{}
	}
	p.gate.Lock()
	p.gate.Unlock() // only waits while the test holds the gate
	p.mu.Lock()
	p.handled = append(p.handled, ev.Path)
	p.mu.Unlock()
	p.handledC <- ev.Path
}
func (p *fakePipeline) Succeeded(*event.Success) {}
func (p *fakePipeline) Reload(ctx context.Context, cfg notify.Config) error {
	if p.release != nil {
		select {
		case <-p.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.mu.Lock()
	p.reloads = append(p.reloads, cfg)
	p.mu.Unlock()
	return nil
}
func (p *fakePipeline) Close(context.Context) error {
	p.mu.Lock()
	p.closedAt = len(p.handled)
	p.mu.Unlock()
	return nil
}
func (p *fakePipeline) Stats() notify.Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return notify.Stats{Detected: uint64(len(p.handled)), NextWake: p.nextWake,
		Sinks: []notify.SinkStats{{Kind: "journal", Name: "journal", Delivered: uint64(len(p.handled)), Queued: p.queued}}}
}

// notifySocket stands in for systemd: a unixgram socket named by
// NOTIFY_SOCKET, its datagrams delivered on a channel in arrival order.
func notifySocket(t *testing.T) <-chan string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	out := make(chan string, 1000)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			out <- string(buf[:n])
		}
	}()
	return out
}

func sdNotify(state string) (bool, error) { return sddaemon.SdNotify(false, state) }

// nextState returns the next datagram that changes the unit's state
// (READY/RELOADING/STOPPING), skipping watchdog pings and status refreshes
// but counting the pings.
func nextState(t *testing.T, msgs <-chan string, pings *int) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-msgs:
			if m == "WATCHDOG=1" {
				*pings++
				continue
			}
			if strings.HasPrefix(m, "STATUS=") {
				continue
			}
			return m
		case <-deadline:
			t.Fatal("no state change notification within 10s")
		}
	}
}

func field(t *testing.T, msg, key string) string {
	t.Helper()
	for _, l := range strings.Split(msg, "\n") {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			return v
		}
	}
	t.Fatalf("%s= missing from %q", key, msg)
	return ""
}

func TestNotifyReloadStopSequence(t *testing.T) {
	msgs := notifySocket(t)
	src, pl := newFakeSource(), newFakePipeline()
	sigs := make(chan os.Signal, 1)
	var logs poll.Buffer
	loadErr := errors.New("/etc/execfaild.toml:7: sink.syslog[0].address: missing port")
	var loadMu sync.Mutex
	var nextLoad error
	load := func() (notify.Config, error) {
		loadMu.Lock()
		defer loadMu.Unlock()
		if nextLoad != nil {
			return notify.Config{}, nextLoad
		}
		return notify.Config{Filter: notify.FilterConfig{}}, nil
	}
	result := make(chan error, 1)
	go func() {
		result <- Run(Options{
			Source: src, Pipeline: pl, Load: load, Notify: sdNotify,
			Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
			Signals:  sigs,
			Watchdog: 100 * time.Millisecond, StatusEvery: 20 * time.Millisecond,
		})
	}()
	pings := 0

	ready := nextState(t, msgs, &pings)
	if !strings.HasPrefix(ready, "READY=1\n") {
		t.Fatalf("first state = %q, want READY=1", ready)
	}
	if st := field(t, ready, "STATUS"); !strings.HasPrefix(st, "mode fentry; 0 failed execs seen") {
		t.Errorf("STATUS at start = %q", st)
	}

	src.ch <- &event.Event{Path: "/first"}
	if got := <-pl.handledC; got != "/first" {
		t.Fatalf("handled %q", got)
	}
	// A refreshed STATUS= carries the count.
	deadline := time.After(10 * time.Second)
	for found := false; !found; {
		select {
		case m := <-msgs:
			if m == "WATCHDOG=1" {
				pings++
			}
			found = strings.HasPrefix(m, "STATUS=mode fentry; 1 failed execs seen")
		case <-deadline:
			t.Fatal("STATUS never showed the handled failure")
		}
	}

	// Valid reload.
	sigs <- syscall.SIGHUP
	m := nextState(t, msgs, &pings)
	if !strings.HasPrefix(m, "RELOADING=1\n") || field(t, m, "MONOTONIC_USEC") == "" || strings.Contains(m, "\n\n") {
		t.Fatalf("after SIGHUP got %q, want RELOADING=1 with MONOTONIC_USEC, no empty line", m)
	}
	if m = nextState(t, msgs, &pings); !strings.HasPrefix(m, "READY=1\n") {
		t.Fatalf("after reload got %q, want READY=1", m)
	}
	pl.mu.Lock()
	if len(pl.reloads) != 1 {
		t.Errorf("pipeline reloaded %d times, want 1", len(pl.reloads))
	}
	pl.mu.Unlock()

	// Broken config: RELOADING, READY again, nothing swapped, one log line
	// naming file, line and key.
	loadMu.Lock()
	nextLoad = loadErr
	loadMu.Unlock()
	sigs <- syscall.SIGHUP
	if m = nextState(t, msgs, &pings); !strings.HasPrefix(m, "RELOADING=1\n") {
		t.Fatalf("after second SIGHUP got %q", m)
	}
	m = nextState(t, msgs, &pings)
	if !strings.HasPrefix(m, "READY=1\n") || !strings.Contains(field(t, m, "STATUS"), "last reload rejected") {
		t.Fatalf("after broken reload got %q, want READY=1 with a status saying so", m)
	}
	pl.mu.Lock()
	if len(pl.reloads) != 1 {
		t.Errorf("broken config reached the pipeline: %d reloads", len(pl.reloads))
	}
	pl.mu.Unlock()
	var rejected []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "reload rejected") {
			rejected = append(rejected, l)
		}
	}
	if len(rejected) != 1 || !strings.Contains(rejected[0], "/etc/execfaild.toml:7: sink.syslog[0].address") {
		t.Errorf("log lines about the rejected reload: %q", rejected)
	}

	// The old configuration keeps handling events.
	src.ch <- &event.Event{Path: "/second"}
	if got := <-pl.handledC; got != "/second" {
		t.Fatalf("after rejected reload handled %q", got)
	}

	sigs <- syscall.SIGTERM
	if m = nextState(t, msgs, &pings); !strings.HasPrefix(m, "STOPPING=1") {
		t.Fatalf("after SIGTERM got %q, want STOPPING=1", m)
	}
	if err := <-result; err != nil {
		t.Fatalf("Run after SIGTERM: %v", err)
	}
	select {
	case <-src.closed:
	default:
		t.Error("source not closed on stop")
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.closedAt != 2 {
		t.Errorf("pipeline closed after %d handled events, want 2", pl.closedAt)
	}
	// The loop ran for several watchdog intervals (50ms each).
	for len(msgs) > 0 {
		if <-msgs == "WATCHDOG=1" {
			pings++
		}
	}
	if pings == 0 {
		t.Error("no WATCHDOG=1 ping arrived")
	}
}

// A reload drains the old sinks in the background: records keep flowing
// into the pipeline meanwhile, and READY=1 waits for the swap to finish.
func TestReloadDoesNotStopIntake(t *testing.T) {
	msgs := notifySocket(t)
	src, pl := newFakeSource(), newFakePipeline()
	pl.release = make(chan struct{})
	sigs := make(chan os.Signal, 1)
	result := make(chan error, 1)
	go func() {
		result <- Run(Options{
			Source: src, Pipeline: pl, Notify: sdNotify, Signals: sigs,
			Load:          func() (notify.Config, error) { return notify.Config{}, nil },
			ReloadTimeout: time.Minute,
		})
	}()
	pings := 0
	if m := nextState(t, msgs, &pings); !strings.HasPrefix(m, "READY=1") {
		t.Fatalf("got %q", m)
	}
	sigs <- syscall.SIGHUP
	if m := nextState(t, msgs, &pings); !strings.HasPrefix(m, "RELOADING=1") {
		t.Fatalf("got %q", m)
	}
	src.ch <- &event.Event{Path: "/during-reload"}
	if got := <-pl.handledC; got != "/during-reload" {
		t.Fatalf("handled %q", got)
	}
	select {
	case m := <-msgs:
		if strings.HasPrefix(m, "READY=1") {
			t.Fatalf("READY=1 before the reload finished: %q", m)
		}
	default:
	}
	close(pl.release)
	if m := nextState(t, msgs, &pings); !strings.HasPrefix(m, "READY=1") {
		t.Fatalf("after reload finished got %q", m)
	}
	sigs <- syscall.SIGTERM
	if err := <-result; err != nil {
		t.Fatal(err)
	}
}

// A handler that never returns must stop the watchdog pings, so systemd
// restarts the service instead of it silently reporting nothing.
func TestWatchdogWithheldWhileStuck(t *testing.T) {
	msgs := notifySocket(t)
	src, pl := newFakeSource(), newFakePipeline()
	sigs := make(chan os.Signal, 1)
	result := make(chan error, 1)
	go func() {
		result <- Run(Options{
			Source: src, Pipeline: pl, Notify: sdNotify, Signals: sigs,
			Load:     func() (notify.Config, error) { return notify.Config{}, nil },
			Watchdog: 40 * time.Millisecond, StatusEvery: time.Hour,
		})
	}()
	waitPing := func() {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case m := <-msgs:
				if m == "WATCHDOG=1" {
					return
				}
			case <-deadline:
				t.Fatal("no watchdog ping")
			}
		}
	}
	waitPing()
	pl.entered = make(chan struct{}, 1)
	pl.gate.Lock()
	src.ch <- &event.Event{Path: "/stuck"}
	<-pl.entered
	// The loop is now inside Handle. The socket keeps datagrams in order, so
	// every ping sent before that precedes this marker; any ping after it
	// would have come from a stuck loop.
	if _, err := sdNotify("MARKER=1"); err != nil {
		t.Fatal(err)
	}
	for m := range msgs {
		if m == "MARKER=1" {
			break
		}
	}
	time.Sleep(10 * 40 * time.Millisecond)
	for len(msgs) > 0 {
		if m := <-msgs; m == "WATCHDOG=1" {
			t.Fatal("watchdog pinged while the pipeline was stuck")
		}
	}
	pl.gate.Unlock()
	<-pl.handledC
	waitPing()
	sigs <- syscall.SIGTERM
	if err := <-result; err != nil {
		t.Fatal(err)
	}
}

// A probe that fails while running ends the daemon with an error (systemd
// restarts it), after telling systemd it is stopping.
func TestSourceFailure(t *testing.T) {
	msgs := notifySocket(t)
	src, pl := newFakeSource(), newFakePipeline()
	result := make(chan error, 1)
	go func() {
		result <- Run(Options{
			Source: src, Pipeline: pl, Notify: sdNotify, Signals: make(chan os.Signal),
			Load: func() (notify.Config, error) { return notify.Config{}, nil },
		})
	}()
	pings := 0
	if m := nextState(t, msgs, &pings); !strings.HasPrefix(m, "READY=1") {
		t.Fatalf("got %q", m)
	}
	src.fail <- errors.New("ring buffer: bad record")
	err := <-result
	if err == nil || !strings.Contains(err.Error(), "read probe: ring buffer: bad record") {
		t.Fatalf("Run = %v", err)
	}
	if m := nextState(t, msgs, &pings); !strings.HasPrefix(m, "STOPPING=1") {
		t.Fatalf("got %q, want STOPPING=1", m)
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.closedAt != 0 {
		t.Errorf("pipeline closedAt = %d, want 0", pl.closedAt)
	}
}

func TestStatusLine(t *testing.T) {
	st := notify.Stats{Detected: 40, Filtered: 3, Sinks: []notify.SinkStats{
		{Kind: "journal", Delivered: 30},
		{Kind: "slack", Delivered: 5, Failed: 2, SpoolEntries: 4},
	}}
	got := Status("kprobe", st, Loss{LostFailures: 7, LostMarkers: 2, Undecodable: 1})
	want := "mode kprobe; 40 failed execs seen, 3 filtered; 35 notifications sent, 2 failed, 4 spooled; lost 7 failures, 2 markers, 1 undecodable"
	if got != want {
		t.Errorf("Status =\n %q\nwant\n %q", got, want)
	}
	st.Sinks = append(st.Sinks, notify.SinkStats{Kind: "alertmanager", Name: "cluster", Delivered: 6, SpoolEntries: 5, Replicas: []notify.ReplicaStats{
		{Name: "1", Delivered: 6},
		{Name: "2", Delivered: 1, SpoolEntries: 5, Failing: "retrying"},
	}})
	got = Status("kprobe", st, Loss{})
	want = "mode kprobe; 40 failed execs seen, 3 filtered; 41 notifications sent, 2 failed, 4 spooled; alertmanager/cluster replica 2: 5 copies spooled, failing: retrying; lost 0 failures, 0 markers, 0 undecodable"
	if got != want {
		t.Errorf("with replicas Status =\n %q\nwant\n %q", got, want)
	}
	// A failing sink is named, with its reason and its backlog.
	failing := notify.Stats{Detected: 9, Sinks: []notify.SinkStats{
		{Kind: "journal", Name: "journal", Delivered: 9},
		{Kind: "slack", Name: "ops", Failed: 3, SpoolEntries: 4, Failing: "credentials rejected"},
	}}
	got = Status("fentry", failing, Loss{})
	want = "mode fentry; 9 failed execs seen, 0 filtered; 9 notifications sent, 3 failed, 4 spooled; slack/ops failing: credentials rejected, 4 spooled; lost 0 failures, 0 markers, 0 undecodable"
	if got != want {
		t.Errorf("with a failing sink Status =\n %q\nwant\n %q", got, want)
	}
	got = Status("kprobe", notify.Stats{}, Loss{LostFailures: 7, Undrained: 3})
	want = "mode kprobe; 0 failed execs seen, 0 filtered; 0 notifications sent; lost 7 failures, 0 markers, 0 undecodable, 3 undrained"
	if got != want {
		t.Errorf("Status =\n %q\nwant\n %q", got, want)
	}
}

// The periodic STATUS= line names each kind of loss apart.
func TestStatusShowsLossByCause(t *testing.T) {
	msgs := notifySocket(t)
	src, pl := newFakeSource(), newFakePipeline()
	src.loss = Loss{LostFailures: 11, LostMarkers: 5, Undecodable: 2}
	sigs := make(chan os.Signal, 1)
	result := make(chan error, 1)
	go func() {
		result <- Run(Options{
			Source: src, Pipeline: pl, Notify: sdNotify, Signals: sigs,
			Load: func() (notify.Config, error) { return notify.Config{}, nil },
		})
	}()
	pings := 0
	ready := nextState(t, msgs, &pings)
	if st := field(t, ready, "STATUS"); !strings.HasSuffix(st, "; lost 11 failures, 5 markers, 2 undecodable") {
		t.Errorf("STATUS = %q, want the failures, markers and undecodable records lost apart", st)
	}
	sigs <- syscall.SIGTERM
	if err := <-result; err != nil {
		t.Fatal(err)
	}
}

// At stop, what the probe still holds reaches the pipeline before the
// pipeline closes, and the last status line counts what the probe could
// only count at Close.
func TestStopDrainsSourceAndReportsFinalLoss(t *testing.T) {
	msgs := notifySocket(t)
	src, pl := newFakeSource(), newFakePipeline()
	src.backlog = []*event.Event{{Path: "/late1"}, {Path: "/late2"}, {Path: "/late3"}}
	src.loss = Loss{LostFailures: 5, LostMarkers: 2, Undecodable: 1}
	src.lossAtClose = &Loss{LostFailures: 5, LostMarkers: 2, Undecodable: 1, Undrained: 4}
	sigs := make(chan os.Signal, 1)
	var logs poll.Buffer
	result := make(chan error, 1)
	go func() {
		result <- Run(Options{
			Source: src, Pipeline: pl, Notify: sdNotify, Signals: sigs,
			Load:   func() (notify.Config, error) { return notify.Config{}, nil },
			Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		})
	}()
	pings := 0
	if m := nextState(t, msgs, &pings); !strings.HasPrefix(m, "READY=1") {
		t.Fatalf("got %q", m)
	}
	sigs <- syscall.SIGTERM
	if err := <-result; err != nil {
		t.Fatal(err)
	}
	pl.mu.Lock()
	if pl.closedAt != 3 || strings.Join(pl.handled, " ") != "/late1 /late2 /late3" {
		t.Errorf("pipeline closed after handling %q (closedAt %d), want the 3 drained records first", pl.handled, pl.closedAt)
	}
	pl.mu.Unlock()
	src.mu.Lock()
	if src.closedEarly {
		t.Error("source closed before its backlog was drained")
	}
	src.mu.Unlock()
	var stopped string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "msg=stopped") {
			stopped = l
		}
	}
	if !strings.Contains(stopped, "3 failed execs seen") || !strings.Contains(stopped, "lost 5 failures, 2 markers, 1 undecodable, 4 undrained") {
		t.Errorf("stopped line = %q, want the drained records and the loss counted at close", stopped)
	}
}

// TestReloadOutcomeToldBeforeReady: every reload's outcome reaches
// OnReload - refused with the loader's reason, or applied - before READY=1
// says the reload is over, and carries a start time no earlier than the
// SIGHUP, so `execfaild reload` can fail systemctl reload on a refused file.
func TestReloadOutcomeToldBeforeReady(t *testing.T) {
	src, pl := newFakeSource(), newFakePipeline()
	sigs := make(chan os.Signal, 1)
	var mu sync.Mutex
	var seq []string
	var results []ReloadResult
	readyC := make(chan struct{}, 10)
	note := func(s string) {
		mu.Lock()
		seq = append(seq, s)
		mu.Unlock()
	}
	var loadErr error
	load := func() (notify.Config, error) {
		mu.Lock()
		defer mu.Unlock()
		return notify.Config{}, loadErr
	}
	done := make(chan error, 1)
	go func() {
		done <- Run(Options{
			Source: src, Pipeline: pl, Load: load, Signals: sigs,
			Notify: func(state string) (bool, error) {
				if strings.HasPrefix(state, "READY=1") {
					note("READY")
					readyC <- struct{}{}
				}
				return true, nil
			},
			OnReload: func(r ReloadResult) {
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
				note("verdict")
			},
		})
	}()
	<-readyC
	reload := func() ReloadResult {
		t.Helper()
		before := MonotonicUsec()
		sigs <- syscall.SIGHUP
		select {
		case <-readyC:
		case <-time.After(10 * time.Second):
			t.Fatal("no READY=1 after SIGHUP")
		}
		mu.Lock()
		defer mu.Unlock()
		if n := len(seq); n < 2 || seq[n-2] != "verdict" || seq[n-1] != "READY" {
			t.Fatalf("notifications %q: want the verdict right before READY=1", seq)
		}
		r := results[len(results)-1]
		if r.Started < before {
			t.Errorf("reload started at %d µs, before the SIGHUP at %d", r.Started, before)
		}
		return r
	}
	if r := reload(); r.Rejected || r.Message != "" {
		t.Errorf("valid reload: %+v, want applied without a message", r)
	}
	mu.Lock()
	loadErr = errors.New("/etc/execfaild.toml:5: filter.exclude_errnos: unknown errno \"ENOPE\"\nsecond line")
	mu.Unlock()
	if r := reload(); !r.Rejected || r.Message != `/etc/execfaild.toml:5: filter.exclude_errnos: unknown errno "ENOPE"` {
		t.Errorf("broken reload: %+v, want rejected with the first line of the loader's error", r)
	}
	sigs <- syscall.SIGTERM
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestSIGUSR1RunsOnTestOffTheLoop: SIGUSR1 runs OnTest while the loop
// keeps handling failures, and a second SIGUSR1 during the run starts none.
func TestSIGUSR1RunsOnTestOffTheLoop(t *testing.T) {
	src, pl := newFakeSource(), newFakePipeline()
	sigs := make(chan os.Signal, 1)
	started, release := make(chan struct{}, 4), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Run(Options{
			Source: src, Pipeline: pl, Signals: sigs,
			Load:   func() (notify.Config, error) { return notify.Config{}, nil },
			Notify: func(string) (bool, error) { return true, nil },
			OnTest: func() { started <- struct{}{}; <-release },
		})
	}()
	sigs <- syscall.SIGUSR1
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("OnTest did not run after SIGUSR1")
	}
	sigs <- syscall.SIGUSR1
	src.ch <- &event.Event{Path: "/during-test"}
	if got := <-pl.handledC; got != "/during-test" {
		t.Fatalf("handled %q while a test ran", got)
	}
	close(release)
	sigs <- syscall.SIGTERM
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(started); n != 0 {
		t.Errorf("%d more tests started for a SIGUSR1 during a running one", n)
	}
}
