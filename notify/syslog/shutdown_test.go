// SPDX-License-Identifier: Apache-2.0

package syslog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/probe/event"
)

// stuckReceiver accepts TCP connections and never reads from them, like a
// receiver whose disk is full: once the socket buffers are full, every
// write blocks.
func stuckReceiver(t *testing.T) string {
	t.Helper()
	lc := net.ListenConfig{}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// A small receive window fills after a few messages.
			c.(*net.TCPConn).SetReadBuffer(4096)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// slowConfig is a syslog sink whose write timeout is far beyond any drain
// deadline, so only the context can end a blocked write.
type slowConfig struct{ *Config }

func (c slowConfig) New(env notify.Env) (notify.Sink, error) {
	s, err := c.Config.New(env)
	if err != nil {
		return nil, err
	}
	s.(*Sink).cfg.Timeout = time.Hour
	return s, nil
}

func init() {
	notify.RegisterSink("syslog-slow", func() notify.SinkConfig { return slowConfig{DefaultConfig()} })
}

// bigEvent is an event whose message is about 60 KB, so that a few of
// them fill the socket buffers.
func bigEvent(i int) *event.Event {
	ev := event.Synthetic(fixedTime, "web-1")
	ev.Path = fmt.Sprintf("/opt/job-%d", i)
	ev.Arguments = []string{ev.Path, strings.Repeat("x", 60000)}
	return &ev
}

// hangGuard is how long a test waits for something that, without the
// context reaching the socket, would take the sink's hour-long timeout.
const hangGuard = time.Minute

// TestSendHonoursContext: a write blocked on a receiver that does not
// read ends when the context does, not when the write timeout passes.
func TestSendHonoursContext(t *testing.T) {
	c := DefaultConfig()
	c.Network, c.Address, c.MaxMessageBytes = "tcp", stuckReceiver(t), maxMessageBytesLimit
	s := newSink(t, c)
	s.cfg.Timeout = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			if err := s.Send(ctx, bigEvent(i)); err != nil {
				errc <- err
				return
			}
			if i == 200 {
				errc <- errors.New("200 messages of 60 KB fit into the buffers of a receiver that never reads")
				return
			}
		}
	}()
	// Let the sender fill the buffers and block (if it gets that far, the
	// cancellation must interrupt the blocked write; if not, the next one).
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("send ended with %v, want the context's cancellation", err)
		}
		if notify.IsPermanent(err) {
			t.Errorf("abandoned send marked permanent: %v", err)
		}
	case <-time.After(hangGuard):
		t.Fatal("send still blocked after its context was cancelled")
	}
}

// TestShutdownSpoolsWhatAStuckReceiverHolds: the daemon's shutdown gives
// the sinks a drain deadline. A syslog receiver that accepts and never
// reads must not hold the shutdown beyond it, and every notification that
// was not written is in the spool for the next start.
func TestShutdownSpoolsWhatAStuckReceiverHolds(t *testing.T) {
	const n = 100
	cfg := notify.DefaultConfig()
	cfg.Spool.Dir = t.TempDir()
	cfg.RateLimit.GlobalRate = notify.Off
	sc := slowConfig{DefaultConfig()}
	sc.Name = "stuck"
	sc.Network, sc.Address, sc.MaxMessageBytes = "tcp", stuckReceiver(t), maxMessageBytesLimit
	sc.Dedup.Window = notify.Off
	sc.RateLimit.Rate = notify.Off
	cfg.Sinks = []notify.SinkEntry{{Kind: "syslog-slow", Config: sc}}
	p, err := notify.New(cfg, notify.Env{Host: "web-1"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		p.Handle(bigEvent(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- p.Close(ctx) }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("close: %v", err)
		}
	case <-time.After(hangGuard):
		t.Fatal("shutdown still blocked by the stuck receiver long after its drain deadline")
	}
	st := p.Stats().Sinks[0]
	spooled := spooledFailures(t, filepath.Join(cfg.Spool.Dir, "syslog-slow-stuck"))
	if st.Failed != 0 {
		t.Errorf("failed = %d, want 0: nothing was refused, only not written in time", st.Failed)
	}
	if spooled == 0 {
		t.Errorf("nothing spooled: %d notifications of 60 KB fit into a receiver that never reads", n)
	}
	if st.DeliveredCount+spooled != n {
		t.Errorf("delivered %d + spooled %d = %d failures, want %d", st.DeliveredCount, spooled, st.DeliveredCount+spooled, n)
	}
}

// spooledFailures sums the counts of a spool directory's entries.
func spooledFailures(t *testing.T, dir string) uint64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var total uint64
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			t.Errorf("unexpected file in the spool: %s", e.Name())
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var ev event.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		total += max(ev.Count, 1)
	}
	return total
}
