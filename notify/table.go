// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"time"
	"unsafe"

	"github.com/execfaild/execfaild/probe/event"
)

// A dedup key pins a sample of its first failure for the whole window.
// Samples are kept small so that the table's size is set by max_keys and
// max_bytes, not by what one user can put into argv and the environment.
const (
	sampleArgs     = 32
	sampleArgBytes = 4096
	// heldOverhead is what a key costs besides its strings: two event
	// structs (sample and digest) and the digest's first and last times,
	// the held entry, the structs an event points to (binary, parent, four
	// small numbers), and the key's slots in the table's map and its
	// user's (string header, pointer, control byte; a map just grown is
	// less than half full), and its place in the sink's backlog, which
	// may hold as many places skipped.
	heldOverhead = 2*unsafe.Sizeof(event.Event{}) + 2*unsafe.Sizeof(time.Time{}) + unsafe.Sizeof(held{}) +
		unsafe.Sizeof(event.Binary{}) + unsafe.Sizeof(event.Parent{}) + 4*8 + 2*56 + 2*unsafe.Sizeof(backlogged{})
	// maxOverflowUIDs bounds the per-user combined digests of one sink.
	maxOverflowUIDs = 64
)

// smallSample is the part of ev a dedup key keeps: everything but the
// environment, and argv bounded (marked truncated when cut).
func smallSample(ev *event.Event) *event.Event {
	s := *ev
	if len(s.Environment) > 0 {
		s.Environment, s.EnvironmentTruncated = nil, true
	}
	s.PIDs = nil
	n := 0
	for i, a := range s.Arguments {
		if i == sampleArgs || n+len(a) > sampleArgBytes {
			keep := s.Arguments[:i:i]
			if i < sampleArgs && n < sampleArgBytes {
				keep = append(keep, a[:sampleArgBytes-n])
			}
			s.Arguments, s.ArgumentsTruncated = keep, true
			break
		}
		n += len(a)
	}
	return &s
}

// heldSize is what the table charges for a key with this sample: the
// sample and the digest made from it share strings, the pid list is at
// most maxPIDs long.
func heldSize(s *event.Event, key string, maxPIDs int) int64 {
	n := int(heldOverhead) + 4*maxPIDs + str(key)
	for _, v := range []string{s.Path, s.InterpreterPath, s.StdinPath, s.Host, s.ErrorText, s.CauseText} {
		n += str(v)
	}
	if s.Binary != nil {
		n += str(s.Binary.Path)
	}
	for _, a := range s.Arguments {
		n += str(a) + 16
	}
	for _, d := range s.Tried {
		n += str(d) + 16
	}
	p := &s.Process
	for _, v := range []string{p.Comm, p.Exe, p.Cwd, p.Cgroup, p.Unit, p.UserUnit, p.ContainerID} {
		n += str(v)
	}
	if s.Parent != nil {
		n += str(s.Parent.Comm) + str(s.Parent.Exe)
	}
	return int64(n)
}

// str is the heap a string of its length takes: the allocator's classes
// are 8 and 16 bytes apart for the short strings of an event.
func str(s string) int { return (len(s) + 15) &^ 15 }

// uidShare is what one user holds in a sink's dedup table.
type uidShare struct {
	keys  map[string]struct{}
	bytes int64
}

// insert adds key to the table if it fits, ending other users' windows
// early to make room when uid holds less than the biggest holder. It
// reports whether key now has an entry.
func (p *Pipeline) insert(s *sinkState, key string, ev *event.Event, now time.Time) (*held, bool) {
	sample := smallSample(ev)
	h := &held{sample: sample, end: now.Add(s.dedup.Window.D()), uid: ev.Process.UID, size: heldSize(sample, key, s.dedup.MaxPIDs)}
	for len(s.entries) >= s.dedup.MaxKeys || s.bytes+h.size > s.dedup.MaxBytes {
		if !p.evictHog(s, h.uid, now) {
			return nil, false
		}
	}
	s.entries[key] = h
	s.bytes += h.size
	sh := s.perUID[h.uid]
	if sh == nil {
		sh = &uidShare{keys: map[string]struct{}{}}
		s.perUID[h.uid] = sh
	}
	sh.keys[key] = struct{}{}
	sh.bytes += h.size
	return h, true
}

// evictHog ends a window of the user holding the most keys, if that is
// not uid and holds more than uid: one user's flood of distinct failures
// then costs that user its own dedup, never another user's first
// notification.
func (p *Pipeline) evictHog(s *sinkState, uid uint32, now time.Time) bool {
	var hog uint32
	most := -1
	for u, sh := range s.perUID {
		if len(sh.keys) > most || len(sh.keys) == most && u < hog {
			hog, most = u, len(sh.keys)
		}
	}
	mine := 0
	if sh := s.perUID[uid]; sh != nil {
		mine = len(sh.keys)
	}
	if most <= mine || hog == uid {
		return false
	}
	for key := range s.perUID[hog].keys {
		p.close(s, key, s.entries[key], now)
		return true
	}
	return false
}

// remove takes key out of the table.
func (s *sinkState) remove(key string, h *held) {
	delete(s.entries, key)
	s.bytes -= h.size
	if sh := s.perUID[h.uid]; sh != nil {
		delete(sh.keys, key)
		sh.bytes -= h.size
		if len(sh.keys) == 0 {
			delete(s.perUID, h.uid)
		}
	}
}

// fold adds ev to its user's combined digest of what could not be sent or
// tracked: a combined digest never mixes users, so the uid it shows is
// every failure's. Beyond maxOverflowUIDs users the oldest combined
// digest goes to the queue (or the spool) at once instead of mixing.
func (p *Pipeline) fold(s *sinkState, ev *event.Event) {
	uid := ev.Process.UID
	if ov := s.overflow[uid]; ov != nil {
		ov.merge(ev, s.dedup.MaxPIDs)
		return
	}
	if len(s.overflowUIDs) >= maxOverflowUIDs {
		oldest := s.overflowUIDs[0]
		ov := s.overflow[oldest]
		s.dropOverflow(0)
		s.enqueueOrStash(ov.event())
	}
	s.overflow[uid] = startDigest(smallSample(ev), ev, s.dedup.MaxPIDs)
	s.overflowUIDs = append(s.overflowUIDs, uid)
}

// dropOverflow forgets the i-th combined digest.
func (s *sinkState) dropOverflow(i int) {
	delete(s.overflow, s.overflowUIDs[i])
	s.overflowUIDs = append(s.overflowUIDs[:i], s.overflowUIDs[i+1:]...)
}
