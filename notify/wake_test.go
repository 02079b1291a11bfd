// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/execfaild/execfaild/internal/poll"
)

// timerClock is a fake clock that also schedules wake-ups: they run when
// Advance moves time past them, so a test sees every wake-up the pipeline
// asks for and when.
type timerClock struct {
	mu     sync.Mutex
	now    time.Time
	nows   int // Now calls: every pass over held work reads the time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *timerClock
	at      time.Time
	f       func()
	stopped bool
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

func (c *timerClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nows++
	return c.now
}

func (c *timerClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

// armed lists the times of the wake-ups still to come.
func (c *timerClock) armed() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Time
	for _, t := range c.timers {
		if !t.stopped {
			out = append(out, t.at)
		}
	}
	return out
}

func (c *timerClock) reads() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nows
}

// Advance moves time by d, running each wake-up that falls due on the way
// at its own time, and returns how many ran.
func (c *timerClock) Advance(d time.Duration) int {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	ran := 0
	for {
		c.mu.Lock()
		var next *fakeTimer
		for _, t := range c.timers {
			if !t.stopped && !t.at.After(end) && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		if next == nil {
			c.now = end
			c.mu.Unlock()
			return ran
		}
		next.stopped = true
		c.now = next.at
		c.mu.Unlock()
		next.f()
		ran++
	}
}

func timerPipeline(t *testing.T, clk *timerClock, sink *recSink, mod func(*Config, *SinkCommon)) *Pipeline {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Spool.Dir = t.TempDir()
	cfg.RateLimit.GlobalRate = Off
	tc := &testConfig{sink: sink}
	tc.Name = "rec"
	cfg.Sinks = []SinkEntry{{Kind: "test", Config: tc}}
	if mod != nil {
		mod(&cfg, &tc.SinkCommon)
	}
	p, err := New(cfg, Env{Host: "h"}, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

// An idle pipeline does not wake: no wake-up is armed and nothing reads
// the clock while nothing is held. A pipeline that polled would read it
// every pass.
func TestIdlePipelineDoesNotWake(t *testing.T) {
	clk := &timerClock{now: t0}
	p := timerPipeline(t, clk, &recSink{}, nil)
	before := clk.reads()
	// Real time passes here, as it does for an idle daemon; a poller on the
	// runtime's clock would have made several passes.
	time.Sleep(150 * time.Millisecond)
	if n := clk.reads() - before; n != 0 {
		t.Errorf("idle pipeline read the clock %d times", n)
	}
	if a := clk.armed(); len(a) != 0 {
		t.Errorf("idle pipeline armed wake-ups at %v", a)
	}
	if n := p.ticks.Load(); n != 0 {
		t.Errorf("idle pipeline made %d passes", n)
	}
}

// Held work arms exactly one wake-up, at its deadline; once it is done
// the pipeline is idle again.
func TestWakeAtNextDeadlineOnly(t *testing.T) {
	clk := &timerClock{now: t0}
	sink := &recSink{}
	p := timerPipeline(t, clk, sink, func(c *Config, s *SinkCommon) { s.Dedup.Window = Duration(time.Minute) })
	p.Handle(failure(clk.Now(), 30, "/srv/not-executable", -13)) // EACCES: sent at once, window held
	poll.Until(t, "the EACCES", func() bool { return len(sink.events()) == 1 })
	if a := clk.armed(); !slices.Equal(a, []time.Time{t0.Add(time.Minute)}) {
		t.Fatalf("armed %v, want the window's end only", a)
	}
	p.Handle(failure(clk.Now(), 30, "/srv/not-executable", -13))
	if ran := clk.Advance(time.Minute - time.Millisecond); ran != 0 {
		t.Errorf("%d wake-ups before the window's end", ran)
	}
	if ran := clk.Advance(time.Millisecond); ran != 1 {
		t.Errorf("%d wake-ups at the window's end, want 1", ran)
	}
	poll.Until(t, "the digest", func() bool { return sink.total() == 2 })
	if a := clk.armed(); len(a) != 0 {
		t.Errorf("armed %v after everything held went out", a)
	}
	if ran := clk.Advance(time.Hour); ran != 0 || p.ticks.Load() != 1 {
		t.Errorf("idle hour: %d wake-ups, %d passes in all (want 0, 1)", ran, p.ticks.Load())
	}
}

// An ENOENT that no PATH search follows reaches the sink within 50 ms of
// its arrival, while a search's directories, arriving microseconds apart,
// are still folded into one notification.
func TestHeldENOENTReleasedWithin50ms(t *testing.T) {
	clk := &timerClock{now: t0}
	sink := &recSink{}
	p := timerPipeline(t, clk, sink, func(c *Config, s *SinkCommon) { s.Dedup.Window = Off })
	p.Handle(failure(clk.Now(), 40, "/opt/missing", -2))
	clk.Advance(50 * time.Millisecond)
	poll.Until(t, "the lone ENOENT", func() bool { return len(sink.events()) == 1 })

	for _, d := range []string{"/usr/local/bin", "/usr/bin", "/bin"} {
		p.Handle(failure(clk.Now(), 41, d+"/nosuch", -2))
		clk.Advance(10 * time.Microsecond)
	}
	clk.Advance(50 * time.Millisecond)
	poll.Until(t, "the search", func() bool { return len(sink.events()) == 2 })
	if ev := sink.events()[1]; ev.Count != 3 || len(ev.Tried) != 3 {
		t.Errorf("search reported with count %d tried %v, want 3 directories folded", ev.Count, ev.Tried)
	}
}

// A failure the rate limit holds back goes out when the next token is
// due, woken for exactly then.
func TestRateLimitedWakesAtNextToken(t *testing.T) {
	clk := &timerClock{now: t0}
	sink := &recSink{}
	p := timerPipeline(t, clk, sink, func(c *Config, s *SinkCommon) {
		s.Dedup.Window = Off
		s.RateLimit = RateLimitConfig{Rate: 2, Burst: 1}
	})
	p.Handle(failure(clk.Now(), 50, "/srv/a", -13))
	p.Handle(failure(clk.Now(), 51, "/srv/b", -13))
	poll.Until(t, "the first", func() bool { return len(sink.events()) == 1 })
	a := clk.armed()
	if len(a) != 1 || a[0].Before(t0.Add(500*time.Millisecond)) || a[0].After(t0.Add(502*time.Millisecond)) {
		t.Fatalf("armed %v, want one wake-up when the next token is due (%v)", a, t0.Add(500*time.Millisecond))
	}
	clk.Advance(time.Second)
	poll.Until(t, "the held one", func() bool { return sink.total() == 2 })
}
