// SPDX-License-Identifier: Apache-2.0

package file

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/probe/event"
)

// TestThroughPipeline runs the file sink behind the real pipeline and
// clock: the first failure is written at once, its repeats as one digest
// when the pipeline closes.
func TestThroughPipeline(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "events.jsonl")
	cfg := notify.DefaultConfig()
	cfg.Spool.Dir = filepath.Join(dir, "spool")
	fc := &FileConfig{Path: out, Mode: 0o600}
	cfg.Sinks = []notify.SinkEntry{{Kind: "file", Config: fc}}
	p, err := notify.New(cfg, notify.Env{Host: "web-1"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		ev := event.Synthetic(time.Now(), "web-1")
		ev.Process.PID = uint32(100 + i)
		p.Handle(&ev)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(out)
		if strings.Count(string(b), "\n") == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("first occurrence not written: %q", b)
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines: %s", len(lines), b)
	}
	var first, digest event.Event
	json.Unmarshal([]byte(lines[0]), &first)
	json.Unmarshal([]byte(lines[1]), &digest)
	if first.Digest || first.Count != 1 || first.Process.PID != 100 {
		t.Errorf("first: %+v", first)
	}
	if !digest.Digest || digest.Count != 2 || len(digest.PIDs) != 2 || digest.PIDs[0] != 101 {
		t.Errorf("digest: digest %v count %d pids %v", digest.Digest, digest.Count, digest.PIDs)
	}
	st := p.Stats()
	if st.Detected != 3 || st.Sinks[0].Delivered != 2 || st.Sinks[0].DeliveredCount != 3 || st.Sinks[0].Deduped != 2 {
		t.Errorf("stats %+v", st)
	}
}
