// SPDX-License-Identifier: Apache-2.0

package daemon

import (
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/probe/event"
)

// fakeTimers hands the loop timers that the test fires itself, and keeps
// every one started.
type fakeTimers struct{ started chan *fakeTimer }

type fakeTimer struct {
	d       time.Duration
	c       chan time.Time
	stopped atomic.Bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }
func (t *fakeTimer) Stop() bool          { return !t.stopped.Swap(true) }

func newFakeTimers() *fakeTimers { return &fakeTimers{started: make(chan *fakeTimer, 100)} }

func (f *fakeTimers) new(d time.Duration) Timer {
	t := &fakeTimer{d: d, c: make(chan time.Time)}
	f.started <- t
	return t
}

// next is the next timer the loop starts.
func (f *fakeTimers) next(t *testing.T) *fakeTimer {
	t.Helper()
	select {
	case tm := <-f.started:
		return tm
	case <-time.After(10 * time.Second):
		t.Fatal("no timer started within 10s")
		return nil
	}
}

// fire makes the timer go off; it returns once the loop took it.
func (tm *fakeTimer) fire(t *testing.T) {
	t.Helper()
	select {
	case tm.c <- time.Now():
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not take the timer within 10s")
	}
}

type statusRun struct {
	msgs   <-chan string
	src    *fakeSource
	pl     *fakePipeline
	timers *fakeTimers
	sigs   chan os.Signal
	result chan error
}

// startStatusRun runs the loop without a watchdog, with fake timers, up
// to READY=1.
func startStatusRun(t *testing.T) *statusRun {
	t.Helper()
	r := &statusRun{msgs: notifySocket(t), src: newFakeSource(), pl: newFakePipeline(), timers: newFakeTimers(),
		sigs: make(chan os.Signal, 1), result: make(chan error, 1)}
	go func() {
		r.result <- Run(Options{
			Source: r.src, Pipeline: r.pl, Notify: sdNotify, Signals: r.sigs,
			Load:     func() (notify.Config, error) { return notify.Config{}, nil },
			NewTimer: r.timers.new,
		})
	}()
	pings := 0
	if m := nextState(t, r.msgs, &pings); !strings.HasPrefix(m, "READY=1") {
		t.Fatalf("first state %q, want READY=1", m)
	}
	return r
}

// stop stops the loop and returns the STATUS= refreshes sent after
// READY=1, in order.
func (r *statusRun) stop(t *testing.T) []string {
	t.Helper()
	r.sigs <- syscall.SIGTERM
	if err := <-r.result; err != nil {
		t.Fatal(err)
	}
	var refreshes []string
	for {
		select {
		case m := <-r.msgs:
			if strings.HasPrefix(m, "STOPPING=1") {
				return refreshes
			}
			if s, ok := strings.CutPrefix(m, "STATUS="); ok {
				refreshes = append(refreshes, s)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no STOPPING=1 within 10s")
		}
	}
}

// Nothing pending, nothing to refresh: an idle daemon starts no timer.
func TestNoStatusTimerWhileIdle(t *testing.T) {
	r := startStatusRun(t)
	refreshes := r.stop(t)
	if n := len(r.timers.started); n != 0 {
		t.Errorf("%d timers started while idle, want none", n)
	}
	if len(refreshes) != 0 {
		t.Errorf("STATUS refreshed while idle: %q", refreshes)
	}
}

// A record starts a refresh, which says what changed and looks once more
// (a notification may still be on its way out); with nothing changed since
// and nothing pending, no further timer is started.
func TestStatusRefreshedAfterRecordUntilSettled(t *testing.T) {
	r := startStatusRun(t)
	r.src.ch <- &event.Event{Path: "/x"}
	<-r.pl.handledC
	first := r.timers.next(t)
	if first.d != 10*time.Second {
		t.Errorf("refresh after %v, want the default 10s", first.d)
	}
	first.fire(t)
	r.timers.next(t).fire(t)
	refreshes := r.stop(t)
	if len(refreshes) != 1 || !strings.HasPrefix(refreshes[0], "mode fentry; 1 failed execs seen") {
		t.Errorf("refreshes %q, want one counting the failure", refreshes)
	}
	if n := len(r.timers.started); n != 0 {
		t.Errorf("%d more timers started with nothing pending", n)
	}
}

// While a sink still has notifications queued, what STATUS= says will
// change without a new record: the refresh goes on, and stops once the
// queue is empty and the status is as sent.
func TestStatusRefreshedWhileSinkBusy(t *testing.T) {
	r := startStatusRun(t)
	r.src.ch <- &event.Event{Path: "/x"}
	<-r.pl.handledC
	r.timers.next(t).fire(t)
	r.pl.mu.Lock()
	r.pl.queued = 1
	r.pl.mu.Unlock()
	busy := r.timers.next(t)
	busy.fire(t)
	again := r.timers.next(t)
	if again.d != 10*time.Second {
		t.Errorf("next refresh after %v, want 10s", again.d)
	}
	r.pl.mu.Lock()
	r.pl.queued = 0
	r.pl.mu.Unlock()
	again.fire(t)
	refreshes := r.stop(t)
	if len(refreshes) != 1 {
		t.Errorf("refreshes %q, want one: the later ones found nothing new", refreshes)
	}
	if n := len(r.timers.started); n != 0 {
		t.Errorf("%d more timers started with nothing pending", n)
	}
}

// holdWorkAnHour handles one failure, lets its refresh run, then has the
// pipeline hold work due in an hour; it returns the refresh armed for it.
func holdWorkAnHour(t *testing.T, r *statusRun) *fakeTimer {
	t.Helper()
	r.src.ch <- &event.Event{Path: "/x"}
	<-r.pl.handledC
	r.timers.next(t).fire(t)
	r.pl.mu.Lock()
	r.pl.nextWake = time.Now().Add(time.Hour)
	r.pl.mu.Unlock()
	r.timers.next(t).fire(t)
	return r.timers.next(t)
}

// Work the pipeline holds for later (a dedup window's digest) changes the
// counts when it is due: the next refresh comes after that, not every 10s
// until then.
func TestStatusRefreshWaitsForHeldWork(t *testing.T) {
	r := startStatusRun(t)
	later := holdWorkAnHour(t, r)
	if later.d <= time.Hour || later.d > time.Hour+10*time.Second {
		t.Errorf("next refresh after %v, want 10s after the held work is due in 1h", later.d)
	}
	r.stop(t)
}

// TestStatusRefreshBroughtForwardByARecord: with a refresh armed for held
// work an hour away, a new record (and a sink that may start failing on it)
// gets its refresh in 10s, not after the hour: STATUS= used to stay stale
// for a dedup window while a sink failed.
func TestStatusRefreshBroughtForwardByARecord(t *testing.T) {
	r := startStatusRun(t)
	later := holdWorkAnHour(t, r)
	if later.d <= time.Hour {
		t.Fatalf("refresh after %v, want after the held work", later.d)
	}
	r.src.ch <- &event.Event{Path: "/y"}
	<-r.pl.handledC
	soon := r.timers.next(t)
	if soon.d != 10*time.Second || !later.stopped.Load() {
		t.Errorf("after a record: a refresh after %v (want 10s), the hour-long one stopped: %v", soon.d, later.stopped.Load())
	}
	r.stop(t)
}
