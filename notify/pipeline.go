// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/execfaild/execfaild/probe/event"
)

// Clock tells the pipeline the time; tests substitute a fake one. A Clock
// that also implements TimerClock wakes the pipeline itself; any other gets
// wake-ups from the runtime's timers.
type Clock interface{ Now() time.Time }

// TimerClock schedules f to run once d from now, like time.AfterFunc.
type TimerClock interface {
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a wake-up scheduled by a TimerClock.
type Timer interface{ Stop() bool }

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Option adjusts how New builds a Pipeline.
type Option func(*Pipeline)

// WithClock makes the pipeline read time from c (windows, buckets, holds).
func WithClock(c Clock) Option { return func(p *Pipeline) { p.clock = c } }

// WithLostMarkers gives the pipeline the probe's count of lost PATH-search
// success markers. A search pending while it grows is not reported as
// "not found in $PATH": its success may be the marker that was lost.
func WithLostMarkers(f func() uint64) Option { return func(p *Pipeline) { p.lostMarkers = f } }

// blockedRetry is how soon held work whose deadline has passed is looked
// at again when it could not go out (a full delivery queue): the only case
// where the pipeline wakes without a deadline to meet.
const blockedRetry = 50 * time.Millisecond

// Pipeline turns failures into notifications: global filter, PATH-search
// coalescing, then per sink its filter, dedup and rate limit, and a worker
// that delivers, retries and spools. Handle and Succeeded never wait for a
// sink: every stage before delivery is in-memory bookkeeping, and delivery
// queues are bounded, with anything that does not fit folded into a later
// notification's count.
//
// Counting is exact: every failure handed to Handle ends up in exactly one
// of filtered, path_search_resolved, or the Count of a notification that a
// sink delivered, failed, or still holds (queued, spooled, held for a
// digest).
type Pipeline struct {
	env   Env
	log   *slog.Logger
	clock Clock

	// lifeMu serializes Reload and Close; mu guards the stages.
	lifeMu   sync.Mutex
	mu       sync.Mutex
	cfg      Config
	host     string // stamped on every event with cfg.Labels
	filter   *filter
	redact   *redactor
	global   *bucket
	coal     *coalescer
	sinks    []*sinkState
	counters map[string]*sinkCounters // by sink id, kept across reloads
	copies   map[string]*copies       // by replica id, kept across reloads
	closed   bool

	detected, filtered, resolved, afterClose atomic.Uint64
	reloadsRejected                          atomic.Uint64
	// byErrorCause counts detected failures by errno and cause; guarded by
	// mu. Both sets are bounded: errno names and the cause codes.
	byErrorCause map[ErrorCause]uint64

	lostMarkers func() uint64

	// Held work (PATH searches, dedup windows, rate-limited backlogs) is
	// looked at when its earliest deadline comes, by one timer armed for
	// it, never by polling: an idle daemon does not wake. wake is the
	// armed deadline (zero when none); guarded by mu.
	manualTick bool
	timer      Timer
	wake       time.Time
	// ticks counts the time-driven passes, for tests.
	ticks atomic.Uint64
}

// sinkState is one sink's stages; guarded by Pipeline.mu except for w.
type sinkState struct {
	entry   SinkEntry
	id      string
	filter  *filter
	dedup   DedupConfig
	bucket  *bucket
	entries map[string]*held
	bytes   int64 // what entries are charged (heldSize)
	perUID  map[uint32]*uidShare
	// overflow holds per user a combined digest of what could not be sent
	// on time or tracked; overflowUIDs is their order of creation.
	overflow     map[uint32]*digest
	overflowUIDs []uint32
	// backlog lists, oldest first, the keys whose first occurrence the
	// rate limit held back: they go out in that order as tokens return.
	// Entries since closed or released are skipped when reached.
	backlog []backlogged
	// ws is the sink's worker, or one per replica (Replicas): each has
	// its own queue, spool and counters, and c counts for the sink.
	ws []*worker
	c  *sinkCounters
	// keepArgs: the operator let this sink see arguments unredacted.
	keepArgs bool
}

// backlogged is a key in a sink's backlog, with the entry it had then.
type backlogged struct {
	key string
	h   *held
}

// held is one dedup key's state within its window.
type held struct {
	sample *event.Event // first occurrence, small (smallSample): the digest's description
	uid    uint32
	size   int64     // charged against the table's max_bytes
	end    time.Time // window end
	digest *digest   // failures not yet notified; nil when none
	// notified is false while the rate limit has kept even the first
	// occurrence back: such a key goes out as soon as a token is free
	// instead of waiting for its window to end.
	notified bool
}

// New builds the sinks and starts their workers. cfg is normalized first
// (defaults filled, validated). Spooled notifications of sinks with the same
// kind and name are delivered first.
func New(cfg Config, env Env, opts ...Option) (*Pipeline, error) {
	p := &Pipeline{env: env, log: env.Logger, clock: wallClock{}, counters: map[string]*sinkCounters{}, copies: map[string]*copies{},
		byErrorCause: map[ErrorCause]uint64{}}
	for _, o := range opts {
		o(p)
	}
	if p.log == nil {
		p.log = slog.New(slog.NewTextHandler(io.Discard, nil))
		p.env.Logger = p.log
	}
	if err := cfg.Normalize(); err != nil {
		return nil, err
	}
	sinks, err := p.build(cfg)
	if err != nil {
		return nil, err
	}
	p.apply(cfg, sinks)
	reportOrphanSpools(cfg.Spool.Dir, sinks, p.log)
	p.coal = newCoalescer(PathSearchHold)
	p.coal.lostMarkers = p.lostMarkers
	for _, s := range sinks {
		s.start()
	}
	return p, nil
}

// build makes the sinks of cfg without starting them.
func (p *Pipeline) build(cfg Config) ([]*sinkState, error) {
	var out []*sinkState
	fail := func(err error) ([]*sinkState, error) {
		for _, s := range out {
			s.closeSinks()
		}
		return nil, err
	}
	env := p.env
	env.Host = cfg.Hostname(p.env)
	now := p.clock.Now()
	for _, e := range cfg.Sinks {
		com := e.Config.Common()
		sink, err := e.Config.New(env)
		if err != nil {
			return fail(&SinkError{Kind: e.Kind, Index: e.Index, Err: err})
		}
		s := &sinkState{
			entry:    e,
			id:       e.ID(),
			filter:   newFilter(com.Filter),
			dedup:    com.Dedup,
			bucket:   newBucket(com.RateLimit.Rate, com.RateLimit.Burst, now),
			entries:  map[string]*held{},
			perUID:   map[uint32]*uidShare{},
			overflow: map[uint32]*digest{},
			c:        &sinkCounters{},
		}
		if k, ok := e.Config.(ArgumentKeeper); ok {
			s.keepArgs = k.KeepsArguments()
		}
		s.ws = p.workers(cfg, s, sink)
		out = append(out, s)
	}
	return out, nil
}

// workers makes the worker of sink, or one per replica.
func (p *Pipeline) workers(cfg Config, s *sinkState, sink Sink) []*worker {
	replicas, ok := sink.(Replicas)
	if !ok || len(replicas) < 2 {
		return []*worker{p.worker(cfg, s, sink, s.id, s.id, s.c)}
	}
	ws := make([]*worker, len(replicas))
	for i, r := range replicas {
		w := p.worker(cfg, s, r, ReplicaID(s.id, i), replicaSpoolDir(s.id, i), &sinkCounters{})
		w.copies = &copies{byName: map[string]*delivery{}}
		ws[i] = w
	}
	return ws
}

// worker makes one worker delivering to sink, spooling below dir.
func (p *Pipeline) worker(cfg Config, s *sinkState, sink Sink, id, dir string, c *sinkCounters) *worker {
	com := s.entry.Config.Common()
	sp, err := openSpool(filepath.Join(cfg.Spool.Dir, dir), cfg.Spool.MaxBytes, cfg.Spool.MaxEntries, com.Dedup.MaxPIDs)
	if err != nil {
		p.log.Error("spool unusable: notifications this sink cannot deliver will be lost", "sink", id, "err", err)
		sp = nil
	} else {
		sp.log = p.log.With("sink", id)
	}
	var pace time.Duration
	if r := com.RateLimit.Rate; r > 0 {
		pace = time.Duration(float64(time.Second) / float64(r))
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &worker{
		id: id, sink: sink, q: make(chan job, com.QueueSize), spool: sp, log: p.log, c: c,
		retryInitial: cfg.Spool.RetryInitial.D(), retryMax: cfg.Spool.RetryMax.D(), pace: pace,
		ctx: ctx, abort: cancel, done: make(chan struct{}),
	}
}

// apply installs cfg and sinks; the caller holds mu or owns p exclusively.
func (p *Pipeline) apply(cfg Config, sinks []*sinkState) {
	p.cfg = cfg
	p.host = cfg.Hostname(p.env)
	p.filter = newFilter(cfg.Filter)
	p.redact = newRedactor(cfg.Redact)
	p.global = newBucket(cfg.RateLimit.GlobalRate, cfg.RateLimit.GlobalBurst, p.clock.Now())
	p.sinks = sinks
	for _, s := range sinks {
		s.c = p.keepCounting(s.id, s.c)
		for _, w := range s.ws {
			w.c = p.keepCounting(w.id, w.c)
			w.copies = p.keepCopies(w.id, w.copies)
		}
	}
}

// keepCopies returns the spooled copies a replica of the same id tracked
// before a reload: its spool directory and entries are the same.
func (p *Pipeline) keepCopies(id string, c *copies) *copies {
	if c == nil {
		return nil
	}
	if old := p.copies[id]; old != nil {
		return old
	}
	p.copies[id] = c
	return c
}

// keepCounting returns the counters id had before a reload (same kind,
// name and replica), or registers c as id's.
func (p *Pipeline) keepCounting(id string, c *sinkCounters) *sinkCounters {
	if old := p.counters[id]; old != nil {
		return old
	}
	p.counters[id] = c
	return c
}

// Handle takes one failure from the probe. It keeps a copy of ev but shares
// its slices (argv, environment): do not modify them afterwards.
func (p *Pipeline) Handle(ev *event.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		p.afterClose.Add(count(ev))
		return
	}
	p.detected.Add(count(ev))
	p.byErrorCause[errorCauseOf(ev)] += count(ev)
	if !p.filter.matchExceptCause(ev) {
		p.filtered.Add(count(ev))
		return
	}
	e := *ev
	if e.Count == 0 {
		e.Count = 1
	}
	// One place names the machine and its labels for every sink; a reload
	// changes them for the failures after it.
	e.Host, e.Labels = p.host, p.cfg.Labels
	now := p.clock.Now()
	for _, out := range p.coal.add(&e, now) {
		p.fanout(out, now)
	}
	if s := p.coal.pending[e.Process.TID]; s != nil {
		p.wakeBy(s.deadline, now)
	}
}

// Succeeded takes the news that a thread with a recent ENOENT then exec'd
// successfully: its pending PATH search found the program when that is
// the program it ran, and found nothing otherwise.
func (p *Pipeline) Succeeded(s *event.Success) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	resolved, ev := p.coal.success(s.TID, s.Name)
	p.resolved.Add(resolved)
	if ev != nil {
		p.fanout(ev, p.clock.Now())
	}
}

// fanout offers ev to every sink that the global filter's causes let it
// reach, now that PATH searches are folded. Arguments are redacted here, before any
// sink's dedup, queue or spool holds them, except for a sink the operator
// allowed the original.
func (p *Pipeline) fanout(ev *event.Event, now time.Time) {
	if !p.filter.matchCause(ev) {
		p.filtered.Add(count(ev))
		return
	}
	redacted := p.redact.event(ev)
	for _, s := range p.sinks {
		src := redacted
		if s.keepArgs {
			src = ev
		}
		if !s.filter.match(src) {
			s.c.filtered.Add(count(src))
			continue
		}
		// Sinks may fold and mutate their copy.
		cp := *src
		p.offer(s, &cp, now)
	}
}

// offer runs dedup and the rate limit of one sink.
func (p *Pipeline) offer(s *sinkState, ev *event.Event, now time.Time) {
	if s.dedup.Window == Off {
		if !p.emit(s, ev, now, true) {
			p.fold(s, ev)
			p.wakeBy(p.tokenAt(s, now), now)
		}
		return
	}
	key := dedupKey(ev, s.dedup.Keys)
	h := s.entries[key]
	if h != nil && now.Before(h.end) {
		s.c.deduped.Add(count(ev))
		p.hold(s, h, ev)
		if !h.notified {
			p.wakeBy(p.tokenAt(s, now), now)
		}
		return
	}
	if h != nil {
		p.close(s, key, h, now)
	}
	h, ok := p.insert(s, key, ev, now)
	if !ok {
		s.c.deduped.Add(count(ev))
		p.fold(s, ev)
		p.wakeBy(p.tokenAt(s, now), now)
		return
	}
	p.wakeBy(h.end, now)
	if p.emit(s, ev, now, true) {
		h.notified = true
	} else {
		p.hold(s, h, ev)
		s.queueBacklog(key, h)
		p.wakeBy(p.tokenAt(s, now), now)
	}
}

// queueBacklog adds key's held-back first occurrence to the end of the
// backlog. Skipped entries are dropped once they outnumber the table's,
// so the backlog stays within a small multiple of it.
func (s *sinkState) queueBacklog(key string, h *held) {
	if len(s.backlog) >= 2*len(s.entries)+64 {
		s.backlog = slices.DeleteFunc(s.backlog, func(b backlogged) bool { return !s.waiting(b) })
	}
	s.backlog = append(s.backlog, backlogged{key, h})
}

// waiting reports whether b's first occurrence is still held back.
func (s *sinkState) waiting(b backlogged) bool {
	return s.entries[b.key] == b.h && !b.h.notified && b.h.digest != nil
}

// releaseBacklog sends held-back first occurrences, oldest first, while
// both rate limits have tokens.
func (p *Pipeline) releaseBacklog(s *sinkState, now time.Time) {
	for len(s.backlog) > 0 {
		if b := s.backlog[0]; s.waiting(b) && !p.release(s, b.h, now) {
			return
		}
		s.backlog[0] = backlogged{}
		s.backlog = s.backlog[1:]
	}
	s.backlog = nil
}

// hold counts ev in the key's digest of failures not yet notified, which
// describes them as the key's first occurrence does.
func (p *Pipeline) hold(s *sinkState, h *held, ev *event.Event) {
	if h.digest == nil {
		h.digest = startDigest(h.sample, ev, s.dedup.MaxPIDs)
		// Its time is its latest failure's, not the sample's.
		h.digest.Time = lastSeen(ev)
		return
	}
	h.digest.add(ev, s.dedup.MaxPIDs)
}

// emit sends ev to the sink's queue if both rate limits allow; false means
// the caller must keep it for a later digest. Limited counts failures the
// first time a limit holds them back (fresh), not at every later attempt.
func (p *Pipeline) emit(s *sinkState, ev *event.Event, now time.Time, fresh bool) bool {
	if !s.bucket.ready(now) || !p.global.ready(now) {
		if fresh {
			s.c.limited.Add(count(ev))
		}
		return false
	}
	s.bucket.take()
	p.global.take()
	if !s.enqueue(ev) {
		s.bucket.refund()
		p.global.refund()
		s.c.droppedQueueFull.Add(count(ev))
		return false
	}
	return true
}

// close ends a dedup window: the held failures go out as one digest, or
// into the combined digest when the limit or queue will not take it now.
func (p *Pipeline) close(s *sinkState, key string, h *held, now time.Time) {
	s.remove(key, h)
	if h.digest == nil {
		return
	}
	if !p.emit(s, h.digest.event(), now, false) {
		p.fold(s, h.digest.event())
	}
}

// release sends the held failures of a key whose first occurrence the rate
// limit kept back, now that a token may be free. A lone failure goes out as
// itself, not as a digest of one.
func (p *Pipeline) release(s *sinkState, h *held, now time.Time) bool {
	ev := h.digest.event()
	if count(ev) == 1 {
		cp := *h.sample
		ev = &cp
	}
	if !p.emit(s, ev, now, false) {
		return false
	}
	h.digest, h.notified = nil, true
	return true
}

// tick runs the time-driven work due at now and arms the timer for the
// next deadline, if anything is held. The pipeline's timer calls it; tests
// driving a fake clock call it directly.
func (p *Pipeline) tick(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.ticks.Add(1)
	for _, ev := range p.coal.expire(now, false) {
		p.fanout(ev, now)
	}
	for _, s := range p.sinks {
		for key, h := range s.entries {
			if !now.Before(h.end) {
				p.close(s, key, h, now)
			}
		}
		p.releaseBacklog(s, now)
		// Counted as limited once already when they were held back.
		for len(s.overflowUIDs) > 0 && s.bucket.ready(now) && p.global.ready(now) {
			s.bucket.take()
			p.global.take()
			if !s.enqueue(s.overflow[s.overflowUIDs[0]].event()) {
				s.bucket.refund()
				p.global.refund()
				break
			}
			s.dropOverflow(0)
		}
	}
	p.wake = time.Time{}
	p.wakeBy(p.nextDeadline(now), now)
}

// nextDeadline is when held work is next due: the earliest PATH-search
// hold, dedup window end, or - for failures a rate limit holds back - the
// next token. Zero when nothing is held. Caller holds mu.
func (p *Pipeline) nextDeadline(now time.Time) time.Time {
	var next time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, s := range p.coal.pending {
		earliest(s.deadline)
	}
	for _, s := range p.sinks {
		waiting := len(s.overflowUIDs) > 0
		for _, h := range s.entries {
			earliest(h.end)
			waiting = waiting || !h.notified && h.digest != nil
		}
		if waiting {
			earliest(p.tokenAt(s, now))
		}
	}
	return next
}

// tokenAt is when both rate limits of s will have a token.
func (p *Pipeline) tokenAt(s *sinkState, now time.Time) time.Time {
	a, b := s.bucket.readyAt(now), p.global.readyAt(now)
	if b.After(a) {
		return b
	}
	return a
}

// wakeBy makes sure the pipeline wakes no later than t (zero: no need).
// Work due already but still held after a pass (a full queue) is retried
// after blockedRetry, not in a loop. Caller holds mu.
func (p *Pipeline) wakeBy(t, now time.Time) {
	if t.IsZero() || p.manualTick || p.closed {
		return
	}
	if !t.After(now) {
		t = now.Add(blockedRetry)
	}
	if !p.wake.IsZero() && !t.Before(p.wake) {
		return
	}
	if p.timer != nil {
		p.timer.Stop()
	}
	p.wake = t
	p.timer = p.timerClock().AfterFunc(t.Sub(now), func() { p.tick(p.clock.Now()) })
}

func (p *Pipeline) timerClock() TimerClock {
	if tc, ok := p.clock.(TimerClock); ok {
		return tc
	}
	return wallClock{}
}

// flushAll pushes out everything held (PATH searches, dedup digests, the
// combined digest), ignoring rate limits, into the queues or — when they
// are full — the spool. Caller holds mu.
func (p *Pipeline) flushAll(now time.Time, searches bool) {
	if searches {
		for _, ev := range p.coal.expire(now, true) {
			p.fanout(ev, now)
		}
	}
	for _, s := range p.sinks {
		// Held-back first occurrences first, oldest first, as tick would.
		var out []*event.Event
		for _, b := range s.backlog {
			if s.waiting(b) {
				out = append(out, b.h.digest.event())
				b.h.digest = nil
			}
		}
		s.backlog = nil
		for key, h := range s.entries {
			if h.digest != nil {
				out = append(out, h.digest.event())
			}
			s.remove(key, h)
		}
		for _, uid := range s.overflowUIDs {
			out = append(out, s.overflow[uid].event())
		}
		clear(s.overflow)
		s.overflowUIDs = nil
		for _, ev := range out {
			s.enqueueOrStash(ev)
		}
	}
}

// Reload switches to cfg without losing anything queued or held: the new
// sinks are built first (on error nothing changes); then, atomically for
// Handle, everything held for the old sinks (dedup digests, rate-limited
// backlog, pending PATH searches stay) is flushed to the old queues and new
// failures go to the new sinks. The old workers deliver their queues until
// ctx ends and spool the rest; only then do the new workers start, so a
// sink keeping its kind and name delivers the old one's spool first.
// Per-sink counters carry over for sinks keeping their kind and name; dedup
// windows start afresh.
func (p *Pipeline) Reload(ctx context.Context, cfg Config) error {
	p.lifeMu.Lock()
	defer p.lifeMu.Unlock()
	if err := cfg.Normalize(); err != nil {
		return p.rejected(err)
	}
	sinks, err := p.build(cfg)
	if err != nil {
		return p.rejected(err)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		for _, s := range sinks {
			s.closeSinks()
		}
		return p.rejected(errors.New("pipeline closed"))
	}
	// PATH searches are global: they stay pending across the switch.
	p.flushAll(p.clock.Now(), false)
	old := p.sinks
	p.apply(cfg, sinks)
	p.mu.Unlock()

	errs := p.finish(ctx, old)
	for _, s := range sinks {
		s.start()
	}
	return errs
}

// RejectedError is a reload refused before anything changed: the previous
// configuration stays in use.
type RejectedError struct{ Err error }

func (e *RejectedError) Error() string { return "reload rejected: " + e.Err.Error() }
func (e *RejectedError) Unwrap() error { return e.Err }

func (p *Pipeline) rejected(err error) error {
	p.reloadsRejected.Add(1)
	return &RejectedError{err}
}

// ReloadRejected counts a reload refused before it reached the pipeline (a
// file that does not load), so Stats counts every refusal in one place.
func (p *Pipeline) ReloadRejected() { p.reloadsRejected.Add(1) }

// Config is the configuration the pipeline runs with now: the last one a
// reload applied. Its sink entries may build fresh sinks (test-sinks).
func (p *Pipeline) Config() Config {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg
}

// finish drains and closes sinks.
func (p *Pipeline) finish(ctx context.Context, sinks []*sinkState) error {
	var wg sync.WaitGroup
	for _, s := range sinks {
		for _, w := range s.ws {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.finish(ctx)
			}()
		}
	}
	wg.Wait()
	var errs []error
	for _, s := range sinks {
		if err := s.closeSinks(); err != nil {
			errs = append(errs, fmt.Errorf("close sink %s: %w", s.id, err))
		}
	}
	return errors.Join(errs...)
}

// Close stops intake, flushes everything held, lets the workers deliver
// until ctx ends and spools what is left for the next start.
func (p *Pipeline) Close(ctx context.Context) error {
	p.lifeMu.Lock()
	defer p.lifeMu.Unlock()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.flushAll(p.clock.Now(), true)
	p.closed = true
	if p.timer != nil {
		p.timer.Stop()
	}
	sinks := p.sinks
	p.mu.Unlock()
	return p.finish(ctx, sinks)
}

// Stats is a snapshot of the pipeline's counters. Failure counts are in
// failures (a digest of 37 adds 37); Delivered, Failed and Spooled count
// notifications.
type Stats struct {
	Detected           uint64 `json:"detected"`
	Filtered           uint64 `json:"filtered"`
	PathSearchResolved uint64 `json:"path_search_resolved"`
	// AfterClose counts failures handed in after Close; they are not reported.
	AfterClose uint64 `json:"after_close,omitempty"`
	// ReloadsRejected counts reloads refused with the previous
	// configuration kept in use.
	ReloadsRejected uint64 `json:"reloads_rejected,omitempty"`
	// ByErrorCause splits Detected by errno and cause, sorted.
	ByErrorCause []ErrorCauseCount `json:"by_error_cause,omitempty"`
	Sinks        []SinkStats       `json:"sinks"`
	// NextWake is when the pipeline next looks at work it holds (PATH
	// searches, dedup windows, rate-limited backlogs); zero when it holds
	// none. Until then nothing changes without a new failure, except what
	// the sinks' workers still deliver.
	NextWake time.Time `json:"-"`
}

// SinkStats are one sink's counters.
type SinkStats struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Filtered failures did not pass this sink's own filter.
	Filtered uint64 `json:"filtered"`
	// Deduped failures were repeats folded into a digest (or, with the
	// table full, into their user's combined digest).
	Deduped uint64 `json:"deduped"`
	// Limited failures had their first notification held back by a rate
	// limit; they went out later, in a digest or when tokens returned.
	Limited uint64 `json:"limited"`
	// DroppedQueueFull failures did not fit the delivery queue and were
	// folded into the combined digest: delayed, not lost.
	DroppedQueueFull uint64 `json:"dropped_queue_full"`
	Delivered        uint64 `json:"delivered"`
	// DeliveredCount is how many failures the delivered notifications stand for.
	DeliveredCount uint64 `json:"delivered_count"`
	Failed         uint64 `json:"failed"`
	Spooled        uint64 `json:"spooled"`
	Queued         int    `json:"queued"`
	SpoolEntries   int    `json:"spool_entries"`
	// Failing is why the sink's last delivery failed ("credentials
	// rejected", "retrying"); empty once one succeeds.
	Failing string `json:"failing,omitempty"`
	// Replicas are the counters of each replica of a sink that names
	// several (Alertmanager urls); absent for a sink of one.
	Replicas []ReplicaStats `json:"replicas,omitempty"`
}

// ErrorCause is a failure's errno name and cause code.
type ErrorCause struct {
	Error string `json:"error"`
	Cause string `json:"cause"`
}

// ErrorCauseCount is how many detected failures had one errno and cause.
type ErrorCauseCount struct {
	ErrorCause
	Count uint64 `json:"count"`
}

// errorCauseOf is ev's errno and cause as counted: an errno without a
// name (never seen from the kernel, but a number is not a closed set) is
// "other", so the set stays bounded.
func errorCauseOf(ev *event.Event) ErrorCause {
	e := unix.ErrnoName(unix.Errno(-ev.ReturnValue))
	if e == "" {
		e = "other"
	}
	return ErrorCause{Error: e, Cause: ev.Cause}
}

// Stats returns the current counters.
func (p *Pipeline) Stats() Stats {
	p.mu.Lock()
	sinks, wake := p.sinks, p.wake
	byEC := make([]ErrorCauseCount, 0, len(p.byErrorCause))
	for k, n := range p.byErrorCause {
		byEC = append(byEC, ErrorCauseCount{k, n})
	}
	p.mu.Unlock()
	slices.SortFunc(byEC, func(a, b ErrorCauseCount) int {
		return cmp.Or(strings.Compare(a.Error, b.Error), strings.Compare(a.Cause, b.Cause))
	})
	st := Stats{
		NextWake:           wake,
		Detected:           p.detected.Load(),
		Filtered:           p.filtered.Load(),
		PathSearchResolved: p.resolved.Load(),
		AfterClose:         p.afterClose.Load(),
		ReloadsRejected:    p.reloadsRejected.Load(),
		ByErrorCause:       byEC,
	}
	for _, s := range sinks {
		st.Sinks = append(st.Sinks, s.stats())
	}
	return st
}

// String is a one-line summary for systemd's STATUS=.
func (s Stats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d failed execs, %d filtered, %d path searches resolved", s.Detected, s.Filtered, s.PathSearchResolved)
	for _, k := range s.Sinks {
		fmt.Fprintf(&b, "; %s/%s: %d sent", k.Kind, k.Name, k.Delivered)
		if k.Failed > 0 {
			fmt.Fprintf(&b, ", %d failed", k.Failed)
		}
		if k.SpoolEntries > 0 {
			fmt.Fprintf(&b, ", %d spooled", k.SpoolEntries)
		}
		if k.Failing != "" {
			fmt.Fprintf(&b, ", failing: %s", k.Failing)
		}
		for _, r := range k.Replicas {
			fmt.Fprintf(&b, " (replica %s: %d sent", r.Name, r.Delivered)
			if r.SpoolEntries > 0 {
				fmt.Fprintf(&b, ", %d spooled", r.SpoolEntries)
			}
			if r.Failing != "" {
				fmt.Fprintf(&b, ", failing: %s", r.Failing)
			}
			b.WriteString(")")
		}
	}
	return b.String()
}
