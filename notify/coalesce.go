// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/execfaild/execfaild/probe/event"
)

// PathSearchHold is how long an absolute-path ENOENT waits for the rest of
// an execvp-style PATH search from the same thread, counted from its last
// step's arrival. A search walks all of $PATH in microseconds and its steps
// (and the success marker that ends it) reach the pipeline in ring-buffer
// order right behind each other, so a short hold keeps the folding while a
// real miss is reported with little delay; the pipeline wakes at this
// deadline, not at a polling interval.
const PathSearchHold = 20 * time.Millisecond

// maxPendingSearches bounds the threads held at once; beyond it ENOENTs go
// straight on rather than grow memory during a storm.
const maxPendingSearches = 4096

// A search ends after maxSearchDirs directories or maxSearchSpan after it
// began, whatever follows: one thread repeating failures must not hold its
// report back for ever or grow it without bound. Real PATHs have a dozen
// entries and are walked in microseconds.
const (
	maxSearchDirs = 64
	maxSearchSpan = 2 * time.Second
)

// repeatGap is how soon after the step before it a directory the search
// already tried may come again and still belong to it: a $PATH that names
// a directory twice (a profile sourced twice) is walked back to back, in
// microseconds, while a caller retrying one missing path waits between
// tries, and each try is a failure of its own. On a machine slow enough
// that one step of a walk takes longer, the search's own pace counts: a
// repeat within repeatPace times its slowest step so far still belongs
// to it, so the fold does not depend on the machine's speed.
const (
	repeatGap  = time.Millisecond
	repeatPace = 4
)

// search is the ENOENTs of one thread's PATH search so far.
type search struct {
	base string
	// last is the failure that describes the search: the most informative
	// one seen (a bad interpreter beats a missing file), else the latest.
	last  *event.Event
	tried []string
	// steps counts the directories walked, a repeated one included.
	steps    int
	count    uint64
	first    time.Time
	deadline time.Time
	// end is when the search is reported whatever else arrives.
	end time.Time
	// latest is when its last failure happened.
	latest time.Time
	// slowest is the longest gap between two of its steps so far.
	slowest time.Duration
	// lostAt is the lost-marker count when the search began.
	lostAt uint64
}

// continues tells whether ev is the next step of s: the same command in a
// directory the search has not tried yet, or in one it tried, right behind
// the step before.
func (s *search) continues(ev *event.Event) bool {
	if ev.Error != "ENOENT" || !path.IsAbs(ev.Path) || ev.KernelInvoked || ev.Digest ||
		path.Base(ev.Path) != s.base || s.steps >= maxSearchDirs {
		return false
	}
	if !slices.Contains(s.tried, path.Dir(ev.Path)) {
		return true
	}
	return firstSeen(ev).Sub(s.latest) <= max(repeatGap, repeatPace*s.slowest)
}

// step records ev's place in the walk: the slowest gap between steps sets
// the pace a repeated directory is measured against.
func (s *search) step(ev *event.Event) {
	if gap := firstSeen(ev).Sub(s.latest); gap > s.slowest {
		s.slowest = gap
	}
	s.latest = lastSeen(ev)
}

// ranBy tells whether a successful exec of the program the kernel named
// name ends s: the command searched for was found. The kernel keeps 15
// bytes of a program's file name.
func (s *search) ranBy(name string) bool {
	const commLen = 15
	if len(name) == commLen && len(s.base) > commLen {
		return strings.HasPrefix(s.base, name)
	}
	return name == s.base
}

// informative ranks what a failure tells beyond "no such file": a file
// that was found (a binary) and an interpreter it named.
func informative(ev *event.Event) int {
	n := 0
	if ev.Binary != nil {
		n++
	}
	if ev.InterpreterPath != "" {
		n++
	}
	return n
}

// coalescer turns the one-ENOENT-per-$PATH-directory noise of execvp into
// nothing (the program was found later) or one notification listing the
// directories tried (it was found nowhere).
type coalescer struct {
	hold    time.Duration
	pending map[uint32]*search
	// lostMarkers reads how many success markers the probe lost; nil when
	// the source cannot lose any.
	lostMarkers func() uint64
	// unknown counts searches whose outcome lost markers made unknowable.
	unknown uint64
	// lastLost is lostMarkers' value when last read. A search starts from
	// it rather than from a fresh read (which would be a read per failure
	// in a storm of distinct ENOENTs): being at most the fresh value, it
	// can only make a search's outcome unknown where a fresh read would
	// not, never claim one.
	lastLost uint64
}

func newCoalescer(hold time.Duration) *coalescer {
	return &coalescer{hold: hold, pending: map[uint32]*search{}}
}

// searchable tells whether ev can start a PATH search: an absolute path
// that was not there at all. A file that was opened (a binary, a later
// stage) is a failure of its own, reported at once.
func searchable(ev *event.Event) bool {
	return ev.Error == "ENOENT" && path.IsAbs(ev.Path) && !ev.KernelInvoked && !ev.Digest && ev.Process.TID != 0 &&
		ev.Binary == nil && (ev.Stage == event.StagePreOpen || ev.Stage == event.StageUnknown)
}

// add takes the next failure and returns what may go on now: a finished
// search of the same thread (its next record proves the search over) and
// ev itself unless it is held.
func (c *coalescer) add(ev *event.Event, now time.Time) []*event.Event {
	var out []*event.Event
	tid := ev.Process.TID
	if s := c.pending[tid]; s != nil {
		if s.continues(ev) && now.Before(s.end) {
			if d := path.Dir(ev.Path); !slices.Contains(s.tried, d) {
				s.tried = append(s.tried, d)
			}
			s.steps++
			if informative(ev) >= informative(s.last) {
				s.last = ev
			}
			s.count += count(ev)
			s.step(ev)
			s.deadline = now.Add(c.hold)
			if s.deadline.After(s.end) {
				s.deadline = s.end
			}
			return nil
		}
		out = append(out, c.finish(s))
		delete(c.pending, tid)
	}
	if c.hold > 0 && searchable(ev) && len(c.pending) < maxPendingSearches {
		c.pending[tid] = &search{
			base:     path.Base(ev.Path),
			last:     ev,
			tried:    []string{path.Dir(ev.Path)},
			steps:    1,
			count:    count(ev),
			first:    firstSeen(ev),
			deadline: now.Add(c.hold),
			end:      now.Add(maxSearchSpan),
			latest:   lastSeen(ev),
			lostAt:   c.lastLost,
		}
		return out
	}
	return append(out, ev)
}

// success takes a successful exec of the program name by thread tid and
// ends the thread's pending search. When it ran the command searched for,
// the search found it: resolved counts its failures. A success of another
// program resolves nothing: the thread went on to something else, and the
// search goes on as one that found nothing, so a caller cannot hide a
// failed exec of one program behind the success of another. The kernel
// names the program in the success marker itself; a marker without a name
// proves nothing either, and resolves nothing.
func (c *coalescer) success(tid uint32, name string) (resolved uint64, out *event.Event) {
	s := c.pending[tid]
	if s == nil {
		return 0, nil
	}
	delete(c.pending, tid)
	if name != "" && s.ranBy(name) {
		return s.count, nil
	}
	return 0, c.finish(s)
}

// expire returns the searches whose hold ran out (or all with force).
func (c *coalescer) expire(now time.Time, force bool) []*event.Event {
	var out []*event.Event
	for tid, s := range c.pending {
		if force || !now.Before(s.deadline) {
			out = append(out, c.finish(s))
			delete(c.pending, tid)
		}
	}
	return out
}

func (c *coalescer) lost() uint64 {
	if c.lostMarkers == nil {
		return 0
	}
	c.lastLost = c.lostMarkers()
	return c.lastLost
}

// finish reports a search that found nothing. When success markers were
// lost while it was pending, its success may be among them: the failures
// go on as what they are, failed execs of that path, without the
// directory list that would claim the command is nowhere in $PATH.
func (c *coalescer) finish(s *search) *event.Event {
	ev := s.last
	ev.Count = s.count
	if s.count > 1 {
		first, last := s.first, s.latest
		ev.FirstSeen, ev.LastSeen = &first, &last
	}
	concluded := c.lost() == s.lostAt
	if !concluded {
		c.unknown++
	}
	if concluded && len(s.tried) > 1 {
		ev.Tried = s.tried
		diagnoseSearch(ev, s.base)
	}
	return ev
}

// maxCauseDirs bounds the directories a not-found-in-path sentence lists
// (path_search_tried lists them all).
const maxCauseDirs = 512

// diagnoseSearch gives a search that found nothing its cause, unless its
// describing failure has a finer one (a script found on the way whose
// interpreter is missing).
func diagnoseSearch(ev *event.Event, base string) {
	if ev.Cause != "" && ev.Cause != event.CauseNotFound {
		return
	}
	ev.Cause, ev.CauseInferred = event.CauseNotFoundInPath, false
	ev.CauseText = fmt.Sprintf("%s: not found in any of the %d $PATH directories (%s)", base, len(ev.Tried), dirList(ev.Tried))
}

// dirList joins dirs with ", ", ending in "…" where maxCauseDirs cut it.
func dirList(dirs []string) string {
	var b strings.Builder
	for i, d := range dirs {
		if i > 0 {
			b.WriteString(", ")
		}
		if b.Len()+len(d) > maxCauseDirs {
			b.WriteString("…")
			break
		}
		b.WriteString(d)
	}
	return b.String()
}
