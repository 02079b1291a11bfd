// SPDX-License-Identifier: Apache-2.0

// Package sinktest holds what the sink packages' tests share: the -update
// flag and golden-file comparison, the fixed events every golden file
// renders, and building a sink the way the daemon does.
package sinktest

import (
	"bytes"
	"flag"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/probe/event"
)

// Update is the -update flag of every sink package's tests: rewrite the
// golden files from the current output (then review their diff).
var Update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// Golden compares got with the golden file path, or with -update writes it.
func Golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *Update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// Decode decodes the TOML doc into a sink's config, as the file's loader
// does, and fails the test on an error or a key nothing decoded.
func Decode(t testing.TB, doc string, into notify.SinkConfig) {
	t.Helper()
	md, err := toml.Decode(doc, into)
	if err != nil {
		t.Fatal(err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		t.Fatalf("keys not decoded: %v", und)
	}
}

// T0 is the fixed clock of the HTTP sinks' golden files.
var T0 = time.Date(2026, 3, 1, 10, 2, 3, 0, time.UTC)

// Synthetic is event.Synthetic at T0 on host web-1.
func Synthetic() *event.Event {
	ev := event.Synthetic(T0, "web-1")
	return &ev
}

// Digest is event.SyntheticDigest from T0 on host web-1.
func Digest() *event.Event {
	ev := event.SyntheticDigest(T0, "web-1")
	return &ev
}

// Repeats is ev as a digest of 37 repeats from pids 4242 and 4250 in the
// ten minutes up to last; ev's own time stays.
func Repeats(ev event.Event, last time.Time) event.Event {
	first := last.Add(-10 * time.Minute)
	ev.Digest, ev.Count, ev.FirstSeen, ev.LastSeen = true, 37, &first, &last
	ev.PIDs = []uint32{4242, 4250}
	return ev
}

// Build validates c and builds its sink as the daemon on host web-1 would,
// logging to log (nowhere when nil). A config without a name gets name.
func Build[S notify.Sink](t testing.TB, c notify.SinkConfig, name string, log *slog.Logger) S {
	t.Helper()
	if com := c.Common(); com.Name == "" {
		com.Name = name
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s, err := c.New(notify.Env{Host: "web-1", Logger: log})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s.(S)
}
