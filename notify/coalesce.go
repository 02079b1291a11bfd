package notify

import (
	"path"
	"time"

	"github.com/execfaild/execfaild/probe/event"
)

// PathSearchHold is how long an absolute-path ENOENT waits for the rest of
// an execvp-style PATH search from the same thread. A search walks all of
// $PATH in microseconds, so this only delays the report of a real miss.
const PathSearchHold = 200 * time.Millisecond

// maxPendingSearches bounds the threads held at once; beyond it ENOENTs go
// straight on rather than grow memory during a storm.
const maxPendingSearches = 4096

// search is the ENOENTs of one thread's PATH search so far.
type search struct {
	base     string
	last     *event.Event
	tried    []string
	count    uint64
	first    time.Time
	deadline time.Time
}

// coalescer turns the one-ENOENT-per-$PATH-directory noise of execvp into
// nothing (the program was found later) or one notification listing the
// directories tried (it was found nowhere).
type coalescer struct {
	hold    time.Duration
	pending map[uint32]*search
}

func newCoalescer(hold time.Duration) *coalescer {
	return &coalescer{hold: hold, pending: map[uint32]*search{}}
}

func searchable(ev *event.Event) bool {
	return ev.Error == "ENOENT" && path.IsAbs(ev.Path) && !ev.KernelInvoked && !ev.Digest && ev.Process.TID != 0
}

// add takes the next failure and returns what may go on now: a finished
// search of the same thread (its next record proves the search over) and
// ev itself unless it is held.
func (c *coalescer) add(ev *event.Event, now time.Time) []*event.Event {
	var out []*event.Event
	tid := ev.Process.TID
	if s := c.pending[tid]; s != nil {
		if searchable(ev) && path.Base(ev.Path) == s.base {
			s.tried = append(s.tried, path.Dir(ev.Path))
			s.last = ev
			s.count += count(ev)
			s.deadline = now.Add(c.hold)
			return nil
		}
		out = append(out, s.finish())
		delete(c.pending, tid)
	}
	if c.hold > 0 && searchable(ev) && len(c.pending) < maxPendingSearches {
		c.pending[tid] = &search{
			base:     path.Base(ev.Path),
			last:     ev,
			tried:    []string{path.Dir(ev.Path)},
			count:    count(ev),
			first:    firstSeen(ev),
			deadline: now.Add(c.hold),
		}
		return out
	}
	return append(out, ev)
}

// success drops the thread's pending search: the program was found. It
// returns how many failures that was.
func (c *coalescer) success(tid uint32) uint64 {
	s := c.pending[tid]
	if s == nil {
		return 0
	}
	delete(c.pending, tid)
	return s.count
}

// expire returns the searches whose hold ran out (or all with force).
func (c *coalescer) expire(now time.Time, force bool) []*event.Event {
	var out []*event.Event
	for tid, s := range c.pending {
		if force || !now.Before(s.deadline) {
			out = append(out, s.finish())
			delete(c.pending, tid)
		}
	}
	return out
}

func (s *search) finish() *event.Event {
	ev := s.last
	ev.Count = s.count
	if len(s.tried) > 1 {
		ev.Tried = s.tried
		first, last := s.first, lastSeen(ev)
		ev.FirstSeen, ev.LastSeen = &first, &last
	}
	return ev
}
