// SPDX-License-Identifier: Apache-2.0

package journal

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/probe/event"
)

// TestSendHonoursContext: a journald that does not read its socket (stuck)
// must not hold a shutdown beyond the drain deadline; a context with no
// deadline is ended by cancellation.
func TestSendHonoursContext(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "socket")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	c := DefaultConfig()
	c.Socket = sock
	snk, err := c.New(notify.Env{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { snk.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		ev := event.Synthetic(time.Date(2026, 11, 27, 10, 2, 3, 0, time.UTC), "web-1")
		for {
			if err := snk.Send(ctx, &ev); err != nil {
				errc <- err
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("send ended with %v, want the context's cancellation", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("send still blocked after its context was cancelled")
	}
}
