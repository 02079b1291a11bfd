package file

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/execfaild/execfaild/probe/event"
)

// hangGuard is how long a test waits for a send that, ignoring its
// context, would block for ever.
const hangGuard = time.Minute

// sendUntilCancelled sends until Send fails, cancelling the context once
// the sink had time to block, and returns the error.
func sendUntilCancelled(t *testing.T, send func(context.Context, *event.Event) error) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		ev := event.Synthetic(when, "web-1")
		for {
			if err := send(ctx, &ev); err != nil {
				errc <- err
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		return err
	case <-time.After(hangGuard):
		t.Fatal("send still blocked after its context was cancelled")
		return nil
	}
}

// TestStdoutHonoursContext: `execfaild run | slow-reader` must not hold a
// shutdown beyond its drain deadline.
func TestStdoutHonoursContext(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	s := &writerSink{w: w}
	if err := sendUntilCancelled(t, s.Send); !errors.Is(err, context.Canceled) {
		t.Fatalf("send ended with %v, want the context's cancellation", err)
	}
	// The abandoned write is still blocked: the next Send must not wait
	// for it beyond its own context either.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ev := event.Synthetic(when, "web-1")
	if err := s.Send(ctx, &ev); !errors.Is(err, context.Canceled) {
		t.Fatalf("send behind a blocked write: %v, want the context's cancellation", err)
	}
}

// TestFileHonoursContext: a file sink whose path is a FIFO nobody reads
// blocks in open; the context must end that too.
func TestFileHonoursContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	s := &fileSink{path: path, mode: 0o600}
	t.Cleanup(func() {
		// Unblock the abandoned open so its goroutine ends.
		if f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
		s.Close()
	})
	if err := sendUntilCancelled(t, s.Send); !errors.Is(err, context.Canceled) {
		t.Fatalf("send ended with %v, want the context's cancellation", err)
	}
}
