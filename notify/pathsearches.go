// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"sync"
	"time"

	"github.com/execfaild/execfaild/probe/event"
)

// PathSearches folds execvp-style PATH searches the way a Pipeline does,
// for a reader that shows failures as they come (execfaild watch) rather
// than notifying sinks: a search that finds the program later shows
// nothing, one that finds it nowhere shows once, diagnosed
// not-found-in-path, when its hold ends. Every other failure goes on at
// once.
type PathSearches struct {
	mu    sync.Mutex
	c     *coalescer
	emit  func(*event.Event)
	timer *time.Timer
	done  bool
}

// NewPathSearches folds searches held for hold (PathSearchHold in the
// daemon) and passes what goes on to emit, one call at a time.
// lostMarkers, when not nil, reads the probe's count of lost success
// markers (see WithLostMarkers).
func NewPathSearches(hold time.Duration, lostMarkers func() uint64, emit func(*event.Event)) *PathSearches {
	c := newCoalescer(hold)
	c.lostMarkers = lostMarkers
	return &PathSearches{c: c, emit: emit}
}

// Failure takes the next failure.
func (s *PathSearches) Failure(ev *event.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for _, out := range s.c.add(ev, now) {
		s.emit(out)
	}
	s.arm(now)
}

// Success ends the thread's pending search: found when the success ran
// the program searched for, shown as a failure otherwise.
func (s *PathSearches) Success(succ *event.Success) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ev := s.c.success(succ.TID, succ.Name); ev != nil {
		s.emit(ev)
	}
}

// Flush passes on every pending search and stops the timer.
func (s *PathSearches) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = true
	if s.timer != nil {
		s.timer.Stop()
	}
	for _, out := range s.c.expire(time.Now(), true) {
		s.emit(out)
	}
}

// expire passes on the searches whose hold has ended.
func (s *PathSearches) expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	now := time.Now()
	for _, out := range s.c.expire(now, false) {
		s.emit(out)
	}
	s.arm(now)
}

// arm sets the timer for the earliest pending deadline. Caller holds mu.
func (s *PathSearches) arm(now time.Time) {
	var next time.Time
	for _, p := range s.c.pending {
		if next.IsZero() || p.deadline.Before(next) {
			next = p.deadline
		}
	}
	if next.IsZero() {
		return
	}
	if s.timer == nil {
		s.timer = time.AfterFunc(next.Sub(now), s.expire)
		return
	}
	s.timer.Reset(next.Sub(now))
}
