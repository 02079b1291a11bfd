// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/execfaild/execfaild/probe/event"
)

// SendTimeout bounds one Sink.Send call.
const SendTimeout = 30 * time.Second

// sinkCounters are per sink and survive a reload of a sink with the same
// kind and name. Filtered, Deduped, Limited and DroppedQueueFull count
// failures; Delivered, Failed and Spooled count notifications.
type sinkCounters struct {
	filtered, deduped, limited, droppedQueueFull atomic.Uint64
	delivered, deliveredCount, failed, spooled   atomic.Uint64
	// failing says why the last delivery attempt failed; nil once one
	// succeeds. It survives a reload like the counters, so a reload that
	// did not fix the credentials still shows the sink failing.
	failing atomic.Pointer[string]
}

// Why a sink is failing, as SinkStats.Failing says it.
var (
	failingUnauthorized = "credentials rejected"
	failingRetrying     = FailingRetrying
)

// FailingRetrying is SinkStats.Failing of a sink whose last delivery
// failed in a way worth retrying: it is retrying, not failing for good.
const FailingRetrying = "retrying"

// worker owns one sink: it is the only goroutine calling Send, so a slow or
// dead destination holds up nobody but itself.
type worker struct {
	id    string
	sink  Sink
	q     chan job
	spool *spool // nil when the spool directory was unusable
	log   *slog.Logger
	c     *sinkCounters
	// copies is set for a replica of a replicated sink: it ties each
	// spooled copy to the notification it is part of (see copies).
	copies *copies

	retryInitial, retryMax time.Duration
	// pace spaces out spool replays at the sink's rate limit: the entries
	// were limited once already, and a recovered destination should not
	// get the whole outage at once.
	pace time.Duration

	ctx   context.Context // cancelled to abandon the drain
	abort context.CancelFunc
	done  chan struct{}
	once  sync.Once
}

// start takes over the spool directory and starts delivering. The rescan
// happens here, synchronously, because until now another worker (the one a
// reload replaced) may have been writing to the same directory, and a
// notification stashed before the rescan would reuse an entry's name.
func (w *worker) start() {
	if w.spool != nil {
		if err := w.spool.rescan(true); err != nil {
			w.log.Error("spool unreadable", "sink", w.id, "err", err)
		}
		w.countDropped()
	}
	go w.run()
}

// job is one notification in a worker's queue; d is nil unless the
// worker is one replica of several.
type job struct {
	ev *event.Event
	d  *delivery
}

// enqueue hands ev to the worker without waiting.
func (w *worker) enqueue(ev *event.Event, d *delivery) bool {
	select {
	case w.q <- job{ev, d}:
		return true
	default:
		return false
	}
}

// stash spools ev directly, for notifications that must not wait for a
// full queue (final digests at close or reload).
func (w *worker) stash(ev *event.Event, d *delivery) {
	if w.spool == nil {
		w.lost(ev, d)
		w.log.Error("notification lost: queue full and no spool", "sink", w.id, "count", count(ev))
		return
	}
	name, merged, err := w.spool.putNamed(ev)
	w.countDropped()
	if merged > 0 {
		w.log.Warn("spool full: oldest notifications merged, their counts kept", "sink", w.id, "merged", merged)
		w.copies.prune(w.spool)
	}
	if err != nil {
		w.lost(ev, d)
		w.log.Error("notification lost: spool", "sink", w.id, "count", count(ev), "err", err)
		return
	}
	w.copies.add(name, d)
	w.c.spooled.Add(1)
}

// lost counts a notification this worker gave up on.
func (w *worker) lost(ev *event.Event, d *delivery) {
	w.c.failed.Add(1)
	d.gaveUp()
}

// countDropped counts as failed the spool entries lost to unreadable
// content (the spool logged each).
func (w *worker) countDropped() {
	if n := w.spool.takeDropped(); n > 0 {
		w.c.failed.Add(n)
	}
}

func (w *worker) run() {
	defer close(w.done)
	backoff := w.retryInitial
	var timer *time.Timer
	// failing: the timer is a backoff after a failed attempt. Otherwise a
	// running timer paces the replay of the spool.
	failing := false
	if w.spool != nil && w.spool.len() > 0 {
		// Left from an outage or the previous run: deliver those first.
		timer = time.NewTimer(0)
	}
	for {
		if timer == nil {
			select {
			case j, ok := <-w.q:
				if !ok {
					return
				}
				if err := w.send(j); err != nil {
					failing = true
					timer = time.NewTimer(w.wait(err, backoff))
				}
			case <-w.ctx.Done():
				w.drainToSpool()
				return
			}
			continue
		}
		select {
		case j, ok := <-w.q:
			if !ok {
				timer.Stop()
				return
			}
			if failing {
				// Outage: keep order by spooling behind what is already
				// waiting.
				w.stash(j.ev, j.d)
				continue
			}
			// The sink works and is replaying a backlog at its pace, which
			// for a long outage takes hours (10,000 entries at Slack's 1/s):
			// a fresh failure goes out ahead of it, and the replay gives up
			// its next slot so the sink's rate still holds.
			if err := w.send(j); err != nil {
				failing = true
				timer.Reset(w.wait(err, backoff))
			} else {
				timer.Reset(w.pace)
			}
		case <-timer.C:
			name, ev, err := w.spool.headNamed()
			d := w.copies.take(name)
			if err != nil {
				w.lost(nil, d)
				w.log.Error("spool entry unusable", "sink", w.id, "err", err)
				timer.Reset(0)
				continue
			}
			if ev == nil {
				timer, backoff, failing = nil, w.retryInitial, false
				continue
			}
			err = w.try(ev, d)
			switch {
			case err == nil:
				w.spool.pop()
				backoff, failing = w.retryInitial, false
				timer.Reset(w.pace)
			case IsUnauthorized(err):
				w.spool.keep()
				w.copies.add(name, d)
				failing = true
				wait := w.wait(err, backoff)
				w.log.Warn("sink credentials still rejected, notifications kept", "sink", w.id, "spooled", w.spool.len(), "retry_in", wait.String(), "err", err)
				timer.Reset(wait)
			case IsPermanent(err):
				w.spool.pop()
				w.permanent(ev, d, err)
				timer.Reset(0)
			default:
				w.spool.keep()
				w.copies.add(name, d)
				failing = true
				backoff = min(backoff*2, w.retryMax)
				wait := w.wait(err, backoff)
				w.log.Warn("sink still failing, will retry", "sink", w.id, "retry_in", wait.String(), "err", err)
				timer.Reset(wait)
			}
		case <-w.ctx.Done():
			timer.Stop()
			w.drainToSpool()
			return
		}
	}
}

// wait is how long to leave the sink alone after err. Credentials a
// destination refused stay refused until someone changes them (and a
// reload starts a new worker at once), so the worker only looks again at
// its slowest pace. A server that said when to come back (429/503
// Retry-After) is believed even beyond our own backoff ceiling.
func (w *worker) wait(err error, backoff time.Duration) time.Duration {
	if IsUnauthorized(err) {
		return max(w.retryMax, retryAfter(err))
	}
	return max(backoff, retryAfter(err))
}

// send delivers a notification from the queue; a non-nil error means the
// sink is failing and the notification was spooled.
func (w *worker) send(j job) error {
	ev := j.ev
	err := w.try(ev, j.d)
	switch {
	case err == nil:
		return nil
	case IsUnauthorized(err):
	case IsPermanent(err):
		w.permanent(ev, j.d, err)
		return nil
	}
	if w.spool == nil {
		w.lost(ev, j.d)
		w.log.Error("notification lost: send failed and no spool", "sink", w.id, "count", count(ev), "err", err)
		return nil
	}
	if IsUnauthorized(err) {
		w.log.Error("sink credentials rejected: notifications are kept in the spool until the credentials are fixed and the configuration reloaded", "sink", w.id, "err", err)
	} else {
		w.log.Warn("sink failing, spooling", "sink", w.id, "err", err)
	}
	w.stash(ev, j.d)
	return err
}

func (w *worker) try(ev *event.Event, d *delivery) error {
	ctx, cancel := context.WithTimeout(w.ctx, SendTimeout)
	defer cancel()
	err := w.sink.Send(ctx, ev)
	if err == nil {
		w.c.delivered.Add(1)
		w.c.deliveredCount.Add(count(ev))
		w.c.failing.Store(nil)
		d.took(ev)
		return nil
	}
	if w.ctx.Err() != nil && !IsPermanent(err) {
		// Abandoned mid-send by a drain deadline: not the sink's fault.
		return errors.Join(err, w.ctx.Err())
	}
	switch {
	case IsUnauthorized(err):
		w.c.failing.Store(&failingUnauthorized)
	case !IsPermanent(err):
		// A rejected notification says nothing about the sink; a
		// retryable failure does.
		w.c.failing.Store(&failingRetrying)
	}
	return err
}

func (w *worker) permanent(ev *event.Event, d *delivery, err error) {
	w.lost(ev, d)
	w.log.Error("sink rejected notification, not retrying", "sink", w.id, "count", count(ev), "err", err)
}

// drainToSpool saves what is still queued once the drain deadline passed.
func (w *worker) drainToSpool() {
	for {
		select {
		case j, ok := <-w.q:
			if !ok {
				return
			}
			w.stash(j.ev, j.d)
		default:
			return
		}
	}
}

// finish closes the queue and waits for the worker to deliver or spool what
// is left, abandoning delivery when ctx ends.
func (w *worker) finish(ctx context.Context) {
	w.once.Do(func() { close(w.q) })
	select {
	case <-w.done:
	case <-ctx.Done():
		w.abort()
		<-w.done
	}
	w.abort() // releases the context's resources once the worker is gone
}
