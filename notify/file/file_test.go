// SPDX-License-Identifier: Apache-2.0

package file

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/notify/internal/sinktest"
	"github.com/execfaild/execfaild/probe/event"
)

var when = time.Date(2026, 11, 27, 10, 2, 3, 456789000, time.UTC)

// samples are the representative event and a digest of it.
func samples() []*event.Event {
	single := event.Synthetic(when, "web-1")
	digest := event.Synthetic(when.Add(10*time.Minute), "web-1")
	first, last := when.Add(time.Second), when.Add(9*time.Minute)
	digest.Digest, digest.Count = true, 37
	digest.FirstSeen, digest.LastSeen = &first, &last
	digest.PIDs = []uint32{4243, 4250, 4311}
	return []*event.Event{&single, &digest}
}

func TestStdoutGolden(t *testing.T) {
	var b bytes.Buffer
	s := &writerSink{w: &b}
	for _, ev := range samples() {
		if err := s.Send(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	sinktest.Golden(t, filepath.Join("testdata", "stdout.golden"), b.Bytes())
	// Each line is one event that decodes back to what was sent.
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines", len(lines))
	}
	for i, l := range lines {
		var ev event.Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatal(err)
		}
		want := samples()[i]
		if ev.Error != "ENOENT" || ev.Count != want.Count || ev.Digest != want.Digest || ev.InterpreterPath != "/bin/bash\r" ||
			ev.Arguments[1] != want.Arguments[1] || !ev.Time.Equal(want.Time) ||
			ev.Cause != "interpreter-crlf" || ev.CauseText != want.CauseText || ev.CauseInferred {
			t.Errorf("line %d decodes to %+v", i, ev)
		}
	}
	if !strings.Contains(lines[0], `"--target=<prod> & \"all\""`) {
		t.Errorf("argv was escaped for HTML: %s", lines[0])
	}
}

func TestFileSinkAppendsAndFollowsRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	cfg := &FileConfig{Path: path, Mode: 0o600}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := cfg.New(notify.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evs := samples()
	if err := s.Send(context.Background(), evs[0]); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), evs[1]); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), evs[0]); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if n := strings.Count(string(old), "\n"); n != 1 {
		t.Errorf("rotated file has %d lines", n)
	}
	if n := strings.Count(string(cur), "\n"); n != 2 || !strings.Contains(string(cur), `"digest":true`) {
		t.Errorf("new file has %d lines: %s", n, cur)
	}
}

func TestFileConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg FileConfig
		key string
	}{
		{FileConfig{Mode: 0o600}, "path"},
		{FileConfig{Path: "rel.jsonl", Mode: 0o600}, "path"},
		{FileConfig{Path: "/x", Mode: 0o1000}, "mode"},
	} {
		err := tc.cfg.Validate()
		fe, ok := err.(*notify.FieldError)
		if !ok || fe.Key != tc.key {
			t.Errorf("%+v: got %v, want an error about %s", tc.cfg, err, tc.key)
		}
	}
}

// A path that names a directory cannot be fixed by retrying: the worker
// must count it failed instead of spooling forever.
func TestDirectoryPathIsPermanent(t *testing.T) {
	s := &fileSink{path: t.TempDir(), mode: 0o600}
	err := s.Send(context.Background(), samples()[0])
	if err == nil || !notify.IsPermanent(err) {
		t.Errorf("got %v, want a permanent error", err)
	}
}

// TestFileSinkDefaultPath: a [[sink.file]] table without a path writes
// below the unit's LogsDirectory=, the one log directory the service may
// write under ProtectSystem=strict.
func TestFileSinkDefaultPath(t *testing.T) {
	sc, ok := notify.NewSinkConfig("file")
	if !ok {
		t.Fatal("file sink not registered")
	}
	c := sc.(*FileConfig)
	if c.Path != "/var/log/execfaild/failures.jsonl" || c.Validate() != nil {
		t.Errorf("default path %q (valid: %v)", c.Path, c.Validate())
	}
}
