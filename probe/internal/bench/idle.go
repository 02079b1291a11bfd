// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"time"
)

// idleSlices is how many one-second slices of a freshly started daemon's
// idling are watched per round: enough to take in a wake-up every 10 s
// (systemd's STATUS= refreshed on a timer, say).
const idleSlices = 12

// idleAfterStart is how long after READY=1 the idle slices begin. About a
// second after start the Go runtime wakes once more on its own (sysmon's
// first GOMAXPROCS check, the scavenger returning the start's garbage): the
// end of starting, not idling.
const idleAfterStart = 2 * time.Second

// scrapeSettle is the pause between a /metrics scrape and the start of a
// slice: the daemon's wake-ups to serve the scrape are the bench's, not
// idling.
const scrapeSettle = 100 * time.Millisecond

// idleSample is a daemon's wake-ups while idle, watched in slices: a quiet
// slice is one in which the probe took in no record at all (other
// programs on the machine fail execs too, and each is work).
type idleSample struct {
	seconds, quietSeconds float64
	wakeups, quietWakeups uint64
	slices, quietSlices   int
	failures              uint64
}

func (s *idleSample) add(o idleSample) {
	s.seconds += o.seconds
	s.quietSeconds += o.quietSeconds
	s.wakeups += o.wakeups
	s.quietWakeups += o.quietWakeups
	s.slices += o.slices
	s.quietSlices += o.quietSlices
	s.failures += o.failures
}

// slice records one slice of d in which the daemon woke wakeups times and
// took in failures failures and successes PATH-search successes.
func (s *idleSample) slice(d time.Duration, wakeups, failures, successes uint64) {
	s.slices++
	s.seconds += d.Seconds()
	s.wakeups += wakeups
	s.failures += failures
	if failures == 0 && successes == 0 {
		s.quietSlices++
		s.quietSeconds += d.Seconds()
		s.quietWakeups += wakeups
	}
}

// String reads as the wake-up rate in quiet slices, then over all of them.
func (s idleSample) String() string {
	if s.slices == 0 {
		return "not measured"
	}
	quiet := "no quiet slice"
	if s.quietSlices > 0 {
		quiet = fmt.Sprintf("%.1f/s in the %d of %d one-second slices without a record", float64(s.quietWakeups)/s.quietSeconds, s.quietSlices, s.slices)
	}
	return fmt.Sprintf("%s; %.1f/s over all, %.1f failures/s of other programs meanwhile",
		quiet, float64(s.wakeups)/s.seconds, float64(s.failures)/s.seconds)
}

// idleWakeups watches pid for n slices of the given length: its context
// switches (every thread's; each is a wake-up) and the failures and
// successes its probe took in meanwhile, read from its /metrics at addr
// outside the slices.
func idleWakeups(pid int, addr string, n int, slice time.Duration) (idleSample, error) {
	var s idleSample
	for range n {
		f0, s0, err := scrapeRecords(addr)
		if err != nil {
			return s, err
		}
		time.Sleep(scrapeSettle)
		w0, t0 := wakeups(pid), time.Now()
		time.Sleep(slice)
		w1, took := wakeups(pid), time.Since(t0)
		f1, s1, err := scrapeRecords(addr)
		if err != nil {
			return s, err
		}
		s.slice(took, w1-w0, f1-f0, s1-s0)
	}
	return s, nil
}
