// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"context"
	"errors"
	"strconv"
	"sync"

	"github.com/execfaild/execfaild/probe/event"
)

// Replicas is a sink whose destination is several replicas of one clustered
// service (an Alertmanager cluster): the replicas deduplicate among
// themselves, so every notification goes to each of them, and it is
// delivered as soon as one of them took it.
//
// The pipeline gives each replica a worker of its own (queue, retries,
// spool, counters), exactly as it would a sink, so a replica that is down
// holds up nobody. The others keep their copy and retry it until their
// spool limit merges it away, as for any sink that is down: the cluster
// expects the same alert from every replica and deduplicates it.
//
// Replicas of one element are a plain sink. Called directly (test-sinks),
// Send tries every replica in turn and succeeds when one took the
// notification.
type Replicas []Sink

// MaxReplicas bounds the replicas of one sink: every one has a queue and a
// spool.
const MaxReplicas = 16

// Send implements Sink.
func (r Replicas) Send(ctx context.Context, ev *event.Event) error {
	var errs []error
	for _, s := range r {
		err := s.Send(ctx, ev)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	err := errors.Join(errs...)
	for _, e := range errs {
		if !IsPermanent(e) {
			return err
		}
	}
	return Permanent(err)
}

// Close implements Sink.
func (r Replicas) Close() error {
	var errs []error
	for _, s := range r {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// ReplicaID names replica i (from 0) of the sink id in logs, stats and its
// spool directory: "alertmanager-am@2". '@' cannot occur in a sink name, so
// no sink's id collides with a replica's.
func ReplicaID(id string, i int) string { return id + "@" + strconv.Itoa(i+1) }

// replicaSpoolDir keeps the first replica in the sink's own directory, so
// turning url into urls keeps what was spooled.
func replicaSpoolDir(id string, i int) string {
	if i == 0 {
		return id
	}
	return ReplicaID(id, i)
}

// delivery is one notification sent to several replicas: the first replica
// to deliver its copy counts it delivered for the sink, and when every
// replica gave up on its copy without any delivering it, it counts failed.
// A nil *delivery (a sink of one) does nothing.
type delivery struct {
	mu        sync.Mutex
	pending   int // replicas whose copy is undecided
	delivered bool
	c         *sinkCounters // the sink's
}

func newDelivery(replicas int, c *sinkCounters) *delivery {
	if replicas < 2 {
		return nil
	}
	return &delivery{pending: replicas, c: c}
}

// took records a replica that delivered its copy.
func (d *delivery) took(ev *event.Event) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pending--
	if !d.delivered {
		d.delivered = true
		d.c.delivered.Add(1)
		d.c.deliveredCount.Add(count(ev))
		d.c.failing.Store(nil)
	}
}

// gaveUp records a replica that lost or was refused its copy.
func (d *delivery) gaveUp() {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pending--
	if d.pending == 0 && !d.delivered {
		d.c.failed.Add(1)
	}
}

// folded records a replica whose spooled copy was merged into a later
// entry of its spool: its failures are counted with that one.
func (d *delivery) folded() {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pending--
}

// copies remembers, for one replica, which notification each spooled copy
// belongs to, so a copy delivered from the spool counts for its
// notification. It lives in memory: copies spooled by an earlier run count
// in the replica's counters only. A nil *copies (a sink of one) holds
// nothing.
type copies struct {
	mu     sync.Mutex
	byName map[string]*delivery
}

func (c *copies) add(name string, d *delivery) {
	if c == nil || d == nil || name == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byName[name] = d
}

// take returns and forgets the notification of the spool entry name.
func (c *copies) take(name string) *delivery {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.byName[name]
	delete(c.byName, name)
	return d
}

// prune forgets the copies the spool merged into later entries.
func (c *copies) prune(sp *spool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, d := range c.byName {
		if !sp.has(name) {
			delete(c.byName, name)
			d.folded()
		}
	}
}

// stats reads the counters of one replica's worker.
func (w *worker) stats(name string) ReplicaStats {
	rs := ReplicaStats{
		Name:           name,
		Delivered:      w.c.delivered.Load(),
		DeliveredCount: w.c.deliveredCount.Load(),
		Failed:         w.c.failed.Load(),
		Spooled:        w.c.spooled.Load(),
		Queued:         len(w.q),
	}
	if w.spool != nil {
		rs.SpoolEntries = w.spool.len()
	}
	if f := w.c.failing.Load(); f != nil {
		rs.Failing = *f
	}
	return rs
}

// ReplicaStats are the counters of one replica of a replicated sink, in
// notifications (each replica gets its own copy of every notification).
type ReplicaStats struct {
	// Name is the replica's position in the sink's url list, from 1.
	Name           string `json:"name"`
	Delivered      uint64 `json:"delivered"`
	DeliveredCount uint64 `json:"delivered_count"`
	Failed         uint64 `json:"failed"`
	Spooled        uint64 `json:"spooled"`
	Queued         int    `json:"queued"`
	SpoolEntries   int    `json:"spool_entries"`
	Failing        string `json:"failing,omitempty"`
}

// enqueue hands ev to the sink's worker, or a copy to every replica's. It
// is refused only when no replica's queue has room; a replica whose queue
// is full while others took theirs spools its copy.
func (s *sinkState) enqueue(ev *event.Event) bool {
	if len(s.ws) == 1 {
		return s.ws[0].enqueue(ev, nil)
	}
	d := newDelivery(len(s.ws), s.c)
	var full []*worker
	for _, w := range s.ws {
		if cp := *ev; !w.enqueue(&cp, d) {
			full = append(full, w)
		}
	}
	if len(full) == len(s.ws) {
		return false
	}
	for _, w := range full {
		cp := *ev
		w.stash(&cp, d)
	}
	return true
}

// enqueueOrStash queues ev or, where a queue is full, spools it.
func (s *sinkState) enqueueOrStash(ev *event.Event) {
	d := newDelivery(len(s.ws), s.c)
	for _, w := range s.ws {
		cp := *ev
		if !w.enqueue(&cp, d) {
			w.stash(&cp, d)
		}
	}
}

func (s *sinkState) start() {
	for _, w := range s.ws {
		w.start()
	}
}

func (s *sinkState) closeSinks() error {
	var errs []error
	for _, w := range s.ws {
		errs = append(errs, w.sink.Close())
	}
	return errors.Join(errs...)
}

// stats reads the sink's counters. For a replicated sink, Delivered,
// DeliveredCount and Failed count notifications (any replica took it, no
// replica did), the rest sum the replicas' copies, and Failing is set only
// while every replica fails.
func (s *sinkState) stats() SinkStats {
	ss := SinkStats{
		Kind:             s.entry.Kind,
		Name:             s.entry.Config.Common().Name,
		Filtered:         s.c.filtered.Load(),
		Deduped:          s.c.deduped.Load(),
		Limited:          s.c.limited.Load(),
		DroppedQueueFull: s.c.droppedQueueFull.Load(),
		Delivered:        s.c.delivered.Load(),
		DeliveredCount:   s.c.deliveredCount.Load(),
		Failed:           s.c.failed.Load(),
	}
	if len(s.ws) == 1 {
		r := s.ws[0].stats("")
		ss.Spooled, ss.Queued, ss.SpoolEntries, ss.Failing = r.Spooled, r.Queued, r.SpoolEntries, r.Failing
		return ss
	}
	allFailing := true
	for i, w := range s.ws {
		r := w.stats(strconv.Itoa(i + 1))
		ss.Replicas = append(ss.Replicas, r)
		ss.Spooled += r.Spooled
		ss.Queued += r.Queued
		ss.SpoolEntries += r.SpoolEntries
		if r.Failing == "" {
			allFailing = false
		} else if ss.Failing == "" {
			ss.Failing = r.Failing
		}
	}
	if !allFailing {
		ss.Failing = ""
	}
	return ss
}
