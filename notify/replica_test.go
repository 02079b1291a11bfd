// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/execfaild/execfaild/internal/poll"
)

type replicaConfig struct {
	SinkCommon
	replicas []*recSink
}

func (c *replicaConfig) Validate() error { return nil }
func (c *replicaConfig) New(Env) (Sink, error) {
	rs := make(Replicas, len(c.replicas))
	for i, r := range c.replicas {
		rs[i] = r
	}
	return rs, nil
}
func (c *replicaConfig) DefaultRateLimit() RateLimitConfig { return RateLimitConfig{Rate: Off} }

func init() { RegisterSink("replicated", func() SinkConfig { return &replicaConfig{} }) }

const down = 1 << 30

// setupReplicas builds a pipeline with one sink of the given replicas, no
// dedup; dir is the spool directory.
func setupReplicas(t *testing.T, dir string, replicas ...*recSink) *Pipeline {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Spool.Dir = dir
	cfg.Spool.RetryInitial = Duration(5 * time.Millisecond)
	cfg.Spool.RetryMax = Duration(20 * time.Millisecond)
	cfg.RateLimit.GlobalRate = Off
	rc := &replicaConfig{replicas: replicas}
	rc.Name = "am"
	rc.Dedup.Window = Off
	cfg.Sinks = []SinkEntry{{Kind: "replicated", Config: rc}}
	p, err := New(cfg, Env{Host: "h"}, WithClock(&fakeClock{now: t0}), manualTick())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

func (s *recSink) recover() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN = 0
}

// Every notification goes to each replica; it counts delivered once, when
// the first replica took it, and the replica that is down keeps its copy
// in its own spool until it comes back.
func TestReplicasEachGetEveryNotification(t *testing.T) {
	dir := t.TempDir()
	up, dead := &recSink{}, &recSink{failN: down}
	p := setupReplicas(t, dir, up, dead)
	for i := range 3 {
		p.Handle(failure(t0, uint32(i+1), "/bin/p"+string(rune('a'+i)), -13))
	}
	poll.Until(t, "three on the live replica", func() bool { return len(up.events()) == 3 })
	poll.Until(t, "three spooled by the dead replica", func() bool {
		r := p.Stats().Sinks[0].Replicas[1]
		return r.SpoolEntries == 3 && r.Spooled == 3
	})
	st := p.Stats().Sinks[0]
	if st.Delivered != 3 || st.DeliveredCount != 3 || st.Failed != 0 || st.Failing != "" {
		t.Errorf("sink stats %+v: want 3 delivered, none failed, not failing", st)
	}
	if r := st.Replicas[0]; r.Name != "1" || r.Delivered != 3 || r.SpoolEntries != 0 || r.Failing != "" {
		t.Errorf("replica 1 %+v", r)
	}
	if r := st.Replicas[1]; r.Name != "2" || r.Delivered != 0 || r.Spooled != 3 || r.Failing != "retrying" {
		t.Errorf("replica 2 %+v", r)
	}
	line := p.Stats().String()
	if !strings.Contains(line, "replica 2: 0 sent, 3 spooled, failing: retrying") {
		t.Errorf("status line %q does not tell replica 2 apart", line)
	}
	// Replica 1 spools in the sink's own directory, replica 2 beside it.
	if n := jsonFiles(t, filepath.Join(dir, "replicated-am@2")); n != 3 {
		t.Errorf("replica 2's spool holds %d entries, want 3", n)
	}

	dead.recover()
	poll.Until(t, "the recovered replica catches up", func() bool { return len(dead.events()) == 3 })
	st = p.Stats().Sinks[0]
	if st.Delivered != 3 || st.Replicas[1].Delivered != 3 || st.Replicas[1].SpoolEntries != 0 {
		t.Errorf("after recovery %+v: the sink must still count 3, replica 2 its own 3", st)
	}
}

// A notification both replicas could only spool counts delivered once,
// when the first copy goes out of a spool.
func TestReplicasDeliveredFromSpoolCountOnce(t *testing.T) {
	a, b := &recSink{failN: down}, &recSink{failN: down}
	p := setupReplicas(t, t.TempDir(), a, b)
	p.Handle(failure(t0, 1, "/bin/x", -13))
	poll.Until(t, "both replicas spooled", func() bool {
		r := p.Stats().Sinks[0].Replicas
		return r[0].Spooled == 1 && r[1].Spooled == 1
	})
	if st := p.Stats().Sinks[0]; st.Delivered != 0 || st.Failing != "retrying" {
		t.Errorf("with every replica down %+v: want none delivered, the sink failing", st)
	}
	a.recover()
	b.recover()
	poll.Until(t, "both delivered", func() bool { return len(a.events()) == 1 && len(b.events()) == 1 })
	poll.Until(t, "spools empty", func() bool { return p.Stats().Sinks[0].SpoolEntries == 0 })
	if st := p.Stats().Sinks[0]; st.Delivered != 1 || st.Failed != 0 || st.Failing != "" {
		t.Errorf("sink stats %+v: want 1 delivered", st)
	}
}

// A notification every replica refused counts failed once.
func TestReplicasAllRefusedCountsFailedOnce(t *testing.T) {
	a, b := &recSink{}, &recSink{}
	p := setupReplicas(t, t.TempDir(), a, b)
	p.Handle(failure(t0, 1, "/permanent", -13))
	p.Handle(failure(t0, 2, "/fine", -13))
	poll.Until(t, "the fine one on both", func() bool { return len(a.events()) == 1 && len(b.events()) == 1 })
	st := p.Stats().Sinks[0]
	if st.Delivered != 1 || st.Failed != 1 {
		t.Errorf("sink stats %+v: want 1 delivered, 1 failed", st)
	}
	for _, r := range st.Replicas {
		if r.Delivered != 1 || r.Failed != 1 {
			t.Errorf("replica %+v: want 1 delivered, 1 failed", r)
		}
	}
}

func jsonFiles(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".json") {
			n++
		}
	}
	return n
}

// A reload during an outage keeps each spooled copy tied to its
// notification: delivered after the reload, it still counts once.
func TestReplicasReloadKeepsSpooledCopiesCounted(t *testing.T) {
	dir := t.TempDir()
	a, b := &recSink{failN: down}, &recSink{failN: down}
	p := setupReplicas(t, dir, a, b)
	p.Handle(failure(t0, 1, "/bin/x", -13))
	poll.Until(t, "both replicas spooled", func() bool {
		r := p.Stats().Sinks[0].Replicas
		return r[0].Spooled == 1 && r[1].Spooled == 1
	})
	cfg := p.cfg
	rc := &replicaConfig{replicas: []*recSink{a, b}}
	rc.SinkCommon = *cfg.Sinks[0].Config.Common()
	cfg.Sinks = []SinkEntry{{Kind: "replicated", Config: rc}}
	if err := p.Reload(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	a.recover()
	b.recover()
	poll.Until(t, "both delivered", func() bool { return len(a.events()) == 1 && len(b.events()) == 1 })
	poll.Until(t, "spools empty", func() bool { return p.Stats().Sinks[0].SpoolEntries == 0 })
	if st := p.Stats().Sinks[0]; st.Delivered != 1 || st.Failed != 0 {
		t.Errorf("sink stats %+v: want the notification delivered once", st)
	}
}
