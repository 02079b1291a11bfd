// SPDX-License-Identifier: Apache-2.0

// Package daemon is the event loop of `execfaild run`: it moves records from
// the probe into the notification pipeline and speaks systemd's notify
// protocol (READY, RELOADING, STOPPING, STATUS, WATCHDOG) around reloads and
// shutdown. It knows the probe and the pipeline only through small
// interfaces, so the state machine is tested without a kernel.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/probe/event"
)

// Source yields what the probe saw. Next blocks until a record arrives; it
// returns an error once the source is drained or closed (and for fatal read
// errors).
type Source interface {
	Next() (*event.Event, *event.Success, error)
	// Drain stops intake without waiting: Next goes on returning what was
	// already captured until none is left or the deadline passes.
	Drain(deadline time.Time)
	// Close releases the source once Next has returned its error.
	Close() error
	// Mode names the attach mode ("fentry", "kprobe", "tracepoint").
	Mode() string
	// Loss counts what never reached the loop: counted, never silently
	// dropped. It stays readable after Close, for the final status line.
	Loss() Loss
}

// Loss is what the probe could not hand over, by cause.
type Loss struct {
	// LostFailures are failed execs the kernel ring buffer could not take.
	LostFailures uint64 `json:"lost_failures"`
	// LostMarkers are PATH-search success markers that never arrived: a
	// PATH search pending while this grows may have succeeded.
	LostMarkers uint64 `json:"lost_markers"`
	// Undecodable records were read but skipped.
	Undecodable uint64 `json:"undecodable"`
	// Undrained failures were still in the ring buffer when the shutdown
	// deadline passed.
	Undrained uint64 `json:"undrained"`
}

// Pipeline is the part of notify.Pipeline the daemon drives.
type Pipeline interface {
	Handle(ev *event.Event)
	Succeeded(s *event.Success)
	Reload(ctx context.Context, cfg notify.Config) error
	Close(ctx context.Context) error
	Stats() notify.Stats
}

// Notifier sends one sd_notify datagram; it reports false when no
// NOTIFY_SOCKET is set (not running under systemd).
type Notifier func(state string) (bool, error)

// Loader reads and validates the configuration again for a reload. Its
// error is logged as it is, so it must name file, line and key and never
// contain a secret.
type Loader func() (notify.Config, error)

// Options configure Run. Source, Pipeline, Load and Notify are required.
type Options struct {
	Source   Source
	Pipeline Pipeline
	Load     Loader
	Notify   Notifier
	Logger   *slog.Logger
	// Signals delivers SIGHUP (reload) and SIGTERM/SIGINT (stop).
	Signals <-chan os.Signal
	// Watchdog is systemd's WATCHDOG_USEC; pings go out at half of it. Zero
	// disables pings.
	Watchdog time.Duration
	// StatusEvery is how often STATUS= is refreshed while what it says
	// may be changing (default 10s).
	StatusEvery time.Duration
	// NewTimer starts a one-shot timer (default: the runtime's); tests
	// substitute one they fire themselves.
	NewTimer func(d time.Duration) Timer
	// ReloadTimeout bounds how long the old sinks get to deliver their
	// queues during a reload before the rest is spooled (default 5s).
	ReloadTimeout time.Duration
	// DrainTimeout bounds delivery at shutdown before spooling (default 10s).
	DrainTimeout time.Duration
	// SourceDrainTimeout bounds how long the records the probe still holds
	// at shutdown are handed to the pipeline; the rest is counted as
	// undrained (default 3s).
	SourceDrainTimeout time.Duration
	// Stall is how long one record may stay unhandled before the loop counts
	// as stuck and stops pinging the watchdog (default: Watchdog).
	Stall time.Duration
	// OnReload, when set, hears every reload's outcome, so that whoever
	// asked for it (`execfaild reload`, systemctl reload) can fail when
	// the file was refused.
	OnReload func(ReloadResult)
	// OnStatus, when set, gets every snapshot STATUS= is made from, for
	// `execfaild status`: both say the same, from the same counters.
	OnStatus func(Snapshot)
	// OnTest, when set, runs on SIGUSR1 (`execfaild test-sinks` asking
	// the running daemon), off the loop: a sink that takes its timeout
	// to answer must not hold up the failures still coming. A SIGUSR1
	// while a test runs is not queued: the running test answers it.
	OnTest func()
}

// Snapshot is the daemon's state as STATUS= last told it.
type Snapshot struct {
	// PID is the daemon's, for the commands that signal it.
	PID  int       `json:"pid"`
	Time time.Time `json:"time"`
	Mode string    `json:"mode"`
	// Status is the STATUS= line itself.
	Status     string       `json:"status"`
	Stats      notify.Stats `json:"stats"`
	Loss       Loss         `json:"loss"`
	LastReload string       `json:"last_reload,omitempty"`
}

// ReloadResult is the outcome of one reload.
type ReloadResult struct {
	// Started is CLOCK_MONOTONIC when the reload began, in microseconds:
	// a reload asked for at time T is the first whose Started is not
	// before T (SIGHUPs that arrive during a reload start one more after it).
	Started uint64
	// Rejected: the file was refused and the previous configuration stays.
	Rejected bool
	// Message is the reason for a rejection, or a warning about an applied
	// reload; one line.
	Message string
}

// Timer is a one-shot wake-up of the loop.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

type runtimeTimer struct{ t *time.Timer }

func (t runtimeTimer) C() <-chan time.Time { return t.t.C }
func (t runtimeTimer) Stop() bool          { return t.t.Stop() }

func newRuntimeTimer(d time.Duration) Timer { return runtimeTimer{time.NewTimer(d)} }

// records is buffered so a reload or a slow tick does not push back on the
// reader at once; the kernel ring buffer absorbs longer pauses.
const recordBuffer = 1024

type record struct {
	failure *event.Event
	success *event.Success
}

// Run announces readiness and runs until a stop signal, or until the source
// fails. It returns nil after a clean stop.
func Run(o Options) error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.StatusEvery <= 0 {
		o.StatusEvery = 10 * time.Second
	}
	if o.ReloadTimeout <= 0 {
		o.ReloadTimeout = 5 * time.Second
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 10 * time.Second
	}
	if o.SourceDrainTimeout <= 0 {
		o.SourceDrainTimeout = 3 * time.Second
	}
	if o.Stall <= 0 {
		o.Stall = o.Watchdog
	}
	if o.NewTimer == nil {
		o.NewTimer = newRuntimeTimer
	}
	d := &loop{Options: o, records: make(chan record, recordBuffer), readErr: make(chan error, 1)}
	return d.run()
}

type loop struct {
	Options
	records chan record
	readErr chan error
	closing atomic.Bool
	// pendingSince is the UnixNano at which the oldest record not yet
	// handled was read, 0 when none waits: a watchdog tick that finds it
	// older than Stall withholds the ping.
	pendingSince atomic.Int64
	handled      atomic.Uint64
	lastReload   string
	// reloadStarted is when the reload under way began (CLOCK_MONOTONIC µs).
	reloadStarted uint64
	// testing: an OnTest run is under way.
	testing atomic.Bool
	// refresh is the STATUS= refresh timer, nil while none is due;
	// lastStatus what STATUS= said last.
	refresh    Timer
	refreshAt  time.Time
	lastStatus string
}

func (d *loop) read() {
	for {
		f, s, err := d.Source.Next()
		if err != nil {
			if d.closing.Load() {
				close(d.records)
				return
			}
			d.readErr <- err
			close(d.records)
			return
		}
		if f == nil && s == nil {
			continue
		}
		d.pendingSince.CompareAndSwap(0, time.Now().UnixNano())
		d.records <- record{f, s}
	}
}

func (d *loop) handle(r record) {
	if r.failure != nil {
		d.Pipeline.Handle(r.failure)
	}
	if r.success != nil {
		d.Pipeline.Succeeded(r.success)
	}
	d.handled.Add(1)
	if len(d.records) == 0 {
		d.pendingSince.Store(0)
	} else {
		d.pendingSince.Store(time.Now().UnixNano())
	}
}

func (d *loop) notify(state string) {
	if _, err := d.Notify(state); err != nil {
		d.Logger.Warn("sd_notify failed", "state", firstLine(state), "err", err)
	}
}

// Status is the one-line summary systemd shows in `systemctl status`.
func Status(mode string, st notify.Stats, loss Loss) string {
	var sent, failed, spooled uint64
	var replicas []string
	for _, s := range st.Sinks {
		sent += s.Delivered
		failed += s.Failed
		if len(s.Replicas) == 0 {
			spooled += uint64(s.SpoolEntries)
			// A failing sink is named, with why: the totals alone
			// would not say which one to look at.
			switch s.Failing {
			case "":
			case notify.FailingRetrying:
				replicas = append(replicas, fmt.Sprintf("%s/%s retrying, %d spooled", s.Kind, s.Name, s.SpoolEntries))
			default:
				replicas = append(replicas, fmt.Sprintf("%s/%s failing: %s, %d spooled", s.Kind, s.Name, s.Failing, s.SpoolEntries))
			}
		}
		// A replica's spool holds copies of notifications another replica
		// may have delivered: named apart, not counted as notifications.
		for _, r := range s.Replicas {
			if r.Failing != "" || r.SpoolEntries > 0 {
				replicas = append(replicas, fmt.Sprintf("%s/%s replica %s: %d copies spooled, failing: %s", s.Kind, s.Name, r.Name, r.SpoolEntries, orNo(r.Failing)))
			}
		}
	}
	line := fmt.Sprintf("mode %s; %d failed execs seen, %d filtered; %d notifications sent", mode, st.Detected, st.Filtered, sent)
	if failed > 0 {
		line += fmt.Sprintf(", %d failed", failed)
	}
	if spooled > 0 {
		line += fmt.Sprintf(", %d spooled", spooled)
	}
	for _, r := range replicas {
		line += "; " + r
	}
	line += fmt.Sprintf("; lost %d failures, %d markers, %d undecodable", loss.LostFailures, loss.LostMarkers, loss.Undecodable)
	if loss.Undrained > 0 {
		line += fmt.Sprintf(", %d undrained", loss.Undrained)
	}
	return line
}

func orNo(reason string) string {
	if reason == "" {
		return "no"
	}
	return reason
}

func (d *loop) status() string { return d.statusOf(d.Pipeline.Stats()) }

func (d *loop) statusOf(st notify.Stats) string {
	s := Status(d.Source.Mode(), st, d.Source.Loss())
	if d.lastReload != "" {
		s += "; " + d.lastReload
	}
	return s
}

// sendStatus tells systemd the state, with the status as it is now.
func (d *loop) sendStatus(state string) {
	st := d.Pipeline.Stats()
	d.lastStatus = d.statusOf(st)
	d.snapshot(st, d.lastStatus)
	d.notify(state + "STATUS=" + d.lastStatus)
}

// snapshot hands OnStatus what STATUS= s was made from.
func (d *loop) snapshot(st notify.Stats, s string) {
	if d.OnStatus == nil {
		return
	}
	d.OnStatus(Snapshot{PID: os.Getpid(), Time: time.Now(), Mode: d.Source.Mode(), Status: s, Stats: st, Loss: d.Source.Loss(), LastReload: d.lastReload})
}

// refreshAfter makes sure STATUS= is refreshed within after. The status
// only changes when records come or held work goes out, so the refresh is
// armed then and never while the daemon is idle. A refresh armed for later
// (held work due in a dedup window's time) is brought forward: a record
// that arrives meanwhile, and a sink that starts failing on it, must not
// wait for the window to show.
func (d *loop) refreshAfter(after time.Duration) {
	at := time.Now().Add(after)
	if d.refresh != nil {
		if !at.Before(d.refreshAt) {
			return
		}
		d.refresh.Stop()
	}
	d.refresh, d.refreshAt = d.NewTimer(after), at
}

// refreshC is the refresh timer's channel; nil (never ready) when none is
// armed.
func (d *loop) refreshC() <-chan time.Time {
	if d.refresh == nil {
		return nil
	}
	return d.refresh.C()
}

// refreshStatus sends STATUS= when it changed, and arms the next refresh
// while it may still change by itself: sinks delivering, spooling or
// retrying (the change may still be under way), or held work that
// goes out later (then just after it is due).
func (d *loop) refreshStatus() {
	d.refresh = nil
	st := d.Pipeline.Stats()
	s := d.statusOf(st)
	changed := s != d.lastStatus
	if changed {
		d.lastStatus = s
		d.snapshot(st, s)
		d.notify("STATUS=" + s)
	}
	switch {
	case changed || sinksBusy(st):
		d.refreshAfter(d.StatusEvery)
	case !st.NextWake.IsZero():
		d.refreshAfter(max(time.Until(st.NextWake), 0) + d.StatusEvery)
	}
}

// sinksBusy: some sink holds notifications it has yet to deliver, or is
// failing and will retry.
func sinksBusy(st notify.Stats) bool {
	for _, s := range st.Sinks {
		if s.Queued > 0 || s.SpoolEntries > 0 || s.Failing != "" {
			return true
		}
		for _, r := range s.Replicas {
			if r.SpoolEntries > 0 || r.Failing != "" {
				return true
			}
		}
	}
	return false
}

// alive is the watchdog's evidence: the loop got here (so it is not blocked
// in a handler), the pipeline answers Stats (so its lock is not stuck), and
// no record has waited longer than Stall.
func (d *loop) alive(now time.Time) bool {
	_ = d.Pipeline.Stats()
	since := d.pendingSince.Load()
	return since == 0 || now.Sub(time.Unix(0, since)) < d.Stall
}

func (d *loop) run() error {
	go d.read()

	d.sendStatus("READY=1\n")
	d.Logger.Info("ready", "mode", d.Source.Mode())

	var wd <-chan time.Time
	if d.Watchdog > 0 {
		t := time.NewTicker(d.Watchdog / 2)
		defer t.Stop()
		wd = t.C
		d.notify("WATCHDOG=1")
	}
	defer func() {
		if d.refresh != nil {
			d.refresh.Stop()
		}
	}()

	var reloadDone chan error
	reloadAgain := false
	for {
		select {
		case r, ok := <-d.records:
			if !ok {
				err := <-d.readErr
				d.notify("STOPPING=1\nSTATUS=probe failed: " + firstLine(err.Error()))
				d.shutdown()
				return fmt.Errorf("read probe: %w", err)
			}
			d.handle(r)
			d.refreshAfter(d.StatusEvery)
		case now := <-wd:
			if d.alive(now) {
				d.notify("WATCHDOG=1")
			} else {
				d.Logger.Error("event loop stalled: withholding watchdog ping", "waiting", now.Sub(time.Unix(0, d.pendingSince.Load())).Round(time.Millisecond))
			}
		case <-d.refreshC():
			d.refreshStatus()
		case sig := <-d.Signals:
			switch sig {
			case syscall.SIGUSR1:
				if d.OnTest != nil && d.testing.CompareAndSwap(false, true) {
					go func() {
						defer d.testing.Store(false)
						d.OnTest()
					}()
				}
			case syscall.SIGHUP:
				if reloadDone != nil {
					reloadAgain = true
					continue
				}
				reloadDone = d.startReload()
			case syscall.SIGTERM, syscall.SIGINT:
				d.Logger.Info("stopping", "signal", sig.String())
				d.shutdown()
				return nil
			}
		case err := <-reloadDone:
			reloadDone = nil
			d.finishReload(err)
			if reloadAgain {
				reloadAgain = false
				reloadDone = d.startReload()
			}
		}
	}
}

// startReload validates the new file and swaps the pipeline's sinks in the
// background: the old sinks drain while new records keep flowing, so the
// probe is never detached and nothing queued is lost.
func (d *loop) startReload() chan error {
	// MONOTONIC_USEC lets systemd tell this reload from an earlier one.
	d.reloadStarted = MonotonicUsec()
	d.notify("RELOADING=1\n" + sddaemon.SdNotifyMonotonicUsec() + "STATUS=reloading configuration")
	done := make(chan error, 1)
	// Loading reads the files the configuration names: off the loop, so
	// records keep flowing whatever those reads cost.
	go func() {
		cfg, err := d.Load()
		if err != nil {
			done <- &rejectedError{err}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), d.ReloadTimeout)
		defer cancel()
		err = d.Pipeline.Reload(ctx, cfg)
		// Sinks that could not be built leave the previous configuration
		// in use: that is a rejection, not a reload with a closing error.
		var rej *notify.RejectedError
		if errors.As(err, &rej) {
			err = &rejectedError{rej.Err}
		}
		done <- err
	}()
	return done
}

// rejectedError marks a reload refused before anything changed.
type rejectedError struct{ err error }

func (e *rejectedError) Error() string { return e.err.Error() }
func (e *rejectedError) Unwrap() error { return e.err }

func (d *loop) finishReload(err error) {
	var rej *rejectedError
	res := ReloadResult{Started: d.reloadStarted}
	switch {
	case err == nil:
		d.lastReload = ""
		d.Logger.Info("configuration reloaded")
	case errors.As(err, &rej):
		d.lastReload = "last reload rejected, previous configuration in use"
		res.Rejected, res.Message = true, firstLine(rej.err.Error())
		// The error as an attribute: under systemd it is the ERROR field.
		d.Logger.Error("reload rejected, previous configuration in use", "err", res.Message)
	default:
		// The new sinks are in place; closing an old one failed.
		d.lastReload = ""
		res.Message = "closing the previous sinks: " + firstLine(err.Error())
		d.Logger.Warn("configuration reloaded; " + res.Message)
	}
	// The outcome is told before READY=1: whoever waits for it sees the
	// reload decided by the time systemd does.
	if d.OnReload != nil {
		d.OnReload(res)
	}
	d.sendStatus("READY=1\n")
}

// MonotonicUsec is CLOCK_MONOTONIC in microseconds, the clock systemd and
// `execfaild reload` compare reloads by.
func MonotonicUsec() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return uint64(ts.Sec)*1e6 + uint64(ts.Nsec)/1e3
}

// shutdown stops intake first (draining the source detaches the probes),
// hands the pipeline every record the probe still holds until the source's
// deadline, closes the source, then lets the sinks deliver until their
// deadline and spool the rest. The final status line is written after the
// source is closed, so it counts what could not be drained. Errors from
// closing are logged, not returned: the stop that was asked for happened.
func (d *loop) shutdown() {
	d.notify("STOPPING=1\nSTATUS=stopping: delivering queued notifications")
	d.closing.Store(true)
	d.Source.Drain(time.Now().Add(d.SourceDrainTimeout))
	for r := range d.records {
		d.handle(r)
	}
	srcErr := d.Source.Close()
	ctx, cancel := context.WithTimeout(context.Background(), d.DrainTimeout)
	defer cancel()
	err := d.Pipeline.Close(ctx)
	st := d.Pipeline.Stats()
	d.Logger.Info("stopped", "status", Status(d.Source.Mode(), st, d.Source.Loss()))
	if srcErr != nil {
		d.Logger.Warn("closing the probe: " + srcErr.Error())
	}
	if err != nil {
		d.Logger.Warn("closing sinks: " + err.Error())
	}
}

func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
