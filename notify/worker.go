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
}

// worker owns one sink: it is the only goroutine calling Send, so a slow or
// dead destination holds up nobody but itself.
type worker struct {
	id    string
	sink  Sink
	q     chan *event.Event
	spool *spool // nil when the spool directory was unusable
	log   *slog.Logger
	c     *sinkCounters

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

// enqueue hands ev to the worker without waiting.
func (w *worker) enqueue(ev *event.Event) bool {
	select {
	case w.q <- ev:
		return true
	default:
		return false
	}
}

// stash spools ev directly, for notifications that must not wait for a
// full queue (final digests at close or reload).
func (w *worker) stash(ev *event.Event) {
	if w.spool == nil {
		w.c.failed.Add(1)
		w.log.Error("notification lost: queue full and no spool", "sink", w.id, "count", count(ev))
		return
	}
	merged, err := w.spool.put(ev)
	w.countDropped()
	if merged > 0 {
		w.log.Warn("spool full: oldest notifications merged, their counts kept", "sink", w.id, "merged", merged)
	}
	if err != nil {
		w.c.failed.Add(1)
		w.log.Error("notification lost: spool", "sink", w.id, "count", count(ev), "err", err)
		return
	}
	w.c.spooled.Add(1)
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
	if w.spool != nil && w.spool.len() > 0 {
		// Left from an outage or the previous run: deliver those first.
		timer = time.NewTimer(0)
	}
	for {
		if timer == nil {
			select {
			case ev, ok := <-w.q:
				if !ok {
					return
				}
				if err := w.send(ev); err != nil {
					timer = time.NewTimer(max(backoff, retryAfter(err)))
				}
			case <-w.ctx.Done():
				w.drainToSpool()
				return
			}
			continue
		}
		// Outage: keep order by spooling behind what is already waiting and
		// retry the oldest entry with backoff.
		select {
		case ev, ok := <-w.q:
			if !ok {
				timer.Stop()
				return
			}
			w.stash(ev)
		case <-timer.C:
			ev, err := w.spool.head()
			if err != nil {
				w.c.failed.Add(1)
				w.log.Error("spool entry unusable", "sink", w.id, "err", err)
				timer.Reset(0)
				continue
			}
			if ev == nil {
				timer, backoff = nil, w.retryInitial
				continue
			}
			err = w.try(ev)
			switch {
			case err == nil:
				w.spool.pop()
				backoff = w.retryInitial
				timer.Reset(w.pace)
			case IsPermanent(err):
				w.spool.pop()
				w.permanent(ev, err)
				timer.Reset(0)
			default:
				w.spool.keep()
				backoff = min(backoff*2, w.retryMax)
				// A server that said when to come back (429/503 Retry-After)
				// is believed even beyond our own backoff ceiling.
				wait := max(backoff, retryAfter(err))
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

// send delivers ev from the queue; a non-nil error means the sink is
// failing and ev was spooled.
func (w *worker) send(ev *event.Event) error {
	err := w.try(ev)
	switch {
	case err == nil:
		return nil
	case IsPermanent(err):
		w.permanent(ev, err)
		return nil
	}
	if w.spool == nil {
		w.c.failed.Add(1)
		w.log.Error("notification lost: send failed and no spool", "sink", w.id, "count", count(ev), "err", err)
		return nil
	}
	w.log.Warn("sink failing, spooling", "sink", w.id, "err", err)
	w.stash(ev)
	return err
}

// retryAfter is the delay a sink's error says the destination asked for
// (an HTTP Retry-After), or zero.
func retryAfter(err error) time.Duration {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		return min(ra.RetryAfter(), maxRetryAfter)
	}
	return 0
}

// maxRetryAfter caps a destination's Retry-After so a hostile or broken
// server cannot park a sink for days.
const maxRetryAfter = 15 * time.Minute

func (w *worker) try(ev *event.Event) error {
	ctx, cancel := context.WithTimeout(w.ctx, SendTimeout)
	defer cancel()
	err := w.sink.Send(ctx, ev)
	if err == nil {
		w.c.delivered.Add(1)
		w.c.deliveredCount.Add(count(ev))
		return nil
	}
	if w.ctx.Err() != nil && !IsPermanent(err) {
		// Abandoned mid-send by a drain deadline: not the sink's fault.
		return errors.Join(err, w.ctx.Err())
	}
	return err
}

func (w *worker) permanent(ev *event.Event, err error) {
	w.c.failed.Add(1)
	w.log.Error("sink rejected notification, not retrying", "sink", w.id, "count", count(ev), "err", err)
}

// drainToSpool saves what is still queued once the drain deadline passed.
func (w *worker) drainToSpool() {
	for {
		select {
		case ev, ok := <-w.q:
			if !ok {
				return
			}
			w.stash(ev)
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
