// SPDX-License-Identifier: Apache-2.0

package file

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
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

// TestFileFullFIFOHonoursContext: a FIFO opened by a reader that stops
// reading takes writes until the pipe is full, then blocks; only regular
// files on local file systems are written without a goroutine to abandon,
// so the context still ends the send.
func TestFileFullFIFOHonoursContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	s := &fileSink{path: path, mode: 0o600}
	t.Cleanup(func() {
		r.Close() // the blocked write fails with EPIPE and its goroutine ends
		s.Close()
	})
	if err := sendUntilCancelled(t, s.Send); !errors.Is(err, context.Canceled) {
		t.Fatalf("send ended with %v, want the context's cancellation", err)
	}
}

// TestFileLocalWrittenInline: a regular file on a local file system is
// written on the sending goroutine; the rotation and the lines are as
// before.
func TestFileLocalWrittenInline(t *testing.T) {
	dir := t.TempDir()
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	if !localFS(int64(fs.Type)) {
		t.Skipf("%s is on a file system of type %#x, not a local one", dir, fs.Type)
	}
	path := filepath.Join(dir, "events.jsonl")
	s := &fileSink{path: path, mode: 0o600}
	t.Cleanup(func() { s.Close() })
	ev := event.Synthetic(when, "web-1")
	for i := range 2 {
		if err := s.Send(context.Background(), &ev); err != nil {
			t.Fatal(err)
		}
		if !s.local {
			t.Fatalf("send %d: the regular file %s is not taken for a local one", i+1, path)
		}
		if i == 0 {
			os.Rename(path, path+".1")
		}
	}
	for _, p := range []string{path + ".1", path} {
		if b, err := os.ReadFile(p); err != nil || strings.Count(string(b), "\n") != 1 {
			t.Errorf("%s: %d lines (%v), want 1", p, strings.Count(string(b), "\n"), err)
		}
	}
}

func TestLocalFS(t *testing.T) {
	for _, c := range []struct {
		magic int64
		want  bool
	}{
		{0xef53, true},      // ext4
		{0x01021994, true},  // tmpfs
		{0x6969, false},     // nfs
		{0x65735546, false}, // fuse
		{0x01021997, false}, // 9p
		{0xff534d42, false}, // cifs
	} {
		if got := localFS(c.magic); got != c.want {
			t.Errorf("localFS(%#x) = %v, want %v", c.magic, got, c.want)
		}
	}
}
