// SPDX-License-Identifier: Apache-2.0

package config

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/execfaild/execfaild/notify"
)

const example = "../configs/execfaild.toml"

// setting is a commented-out setting or table header; "##" marks an
// alternative (url_file for url) that cannot be enabled together with the
// line above it.
var (
	setting     = regexp.MustCompile(`^#(\[.*\]|[A-Za-z0-9_-]+ = .*)$`)
	alternative = regexp.MustCompile(`^##(\[.*\]|[A-Za-z0-9_-]+ = .*)$`)
)

func readExample(t *testing.T) (raw, enabled, documented string) {
	t.Helper()
	b, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	var en, doc strings.Builder
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case setting.MatchString(l):
			en.WriteString(l[1:] + "\n")
			doc.WriteString(l[1:] + "\n")
		case alternative.MatchString(l):
			doc.WriteString(l[2:] + "\n")
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			// A table enabled as shipped is documented too.
			en.WriteString(l + "\n")
			doc.WriteString(l + "\n")
		default:
			en.WriteString(l + "\n")
		}
	}
	return string(b), en.String(), doc.String()
}

// TestExampleLoads keeps configs/execfaild.toml honest: as shipped (the
// journal sink on, everything else commented) it loads; with every setting enabled it still loads, so no
// documented key is misspelt, stale or given an invalid default.
func TestExampleLoads(t *testing.T) {
	raw, enabled, _ := readExample(t)
	old := journalSocket
	journalSocket = "/nonexistent"
	defer func() { journalSocket = old }()
	c, err := Parse(example, []byte(raw))
	if err != nil {
		t.Fatalf("shipped example: %v", err)
	}
	// The journal is a sink of its own in the shipped file, so a sink an
	// operator enables adds to it instead of replacing the implicit
	// default; journald's absence does not change that.
	if len(c.Sinks) != 1 || c.Sinks[0].Kind != "journal" {
		t.Errorf("shipped example should have the journal sink enabled, got %+v", c.Sinks)
	}
	if n := c.JournalNote(); n != "" {
		t.Errorf("shipped example: journal note %q, want none", n)
	}
	c, err = Parse(example+" (uncommented)", []byte(enabled))
	if err != nil {
		t.Fatalf("example with every setting enabled: %v", err)
	}
	d, _ := Default()
	if c.Probe.Mode != d.Probe.Mode || c.Dedup.Window != d.Dedup.Window || c.Spool.Dir != d.Spool.Dir || c.RateLimit != d.RateLimit {
		t.Errorf("example's documented defaults differ from the real ones")
	}
}

// TestExampleDocumentsEverything: every registered sink kind has an example
// table, and every key the effective configuration has is in the example.
func TestExampleDocumentsEverything(t *testing.T) {
	_, enabled, documented := readExample(t)
	for _, kind := range notify.SinkKinds() {
		if !strings.Contains(documented, "[[sink."+kind+"]]") {
			t.Errorf("sink kind %q has no [[sink.%s]] example", kind, kind)
		}
	}
	c, err := Parse(example, []byte(enabled))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := c.WriteTOML(&b); err != nil {
		t.Fatal(err)
	}
	doc := map[string]bool{}
	for k := range scanLines(documented).plain {
		doc[k] = true
	}
	for k := range scanLines(b.String()).plain {
		if k == "sink" {
			continue
		}
		if !doc[k] && !documentedPerSink(doc, k) {
			t.Errorf("key %s is not documented in %s", k, example)
		}
	}
}

// documentedPerSink accepts sink.<kind>.filter.x etc. when the global
// section documents x: the per-sink tables take the same keys.
func documentedPerSink(doc map[string]bool, k string) bool {
	parts := strings.SplitN(k, ".", 4)
	if len(parts) == 4 && parts[0] == "sink" {
		switch parts[2] {
		case "filter", "dedup", "rate_limit":
			return doc[parts[2]+"."+parts[3]]
		}
	}
	if len(parts) == 3 && parts[0] == "sink" {
		switch parts[2] {
		case "filter", "dedup", "rate_limit":
			return doc[parts[2]]
		case "name", "queue_size":
			// Common to every sink: documented once is enough.
			for d := range doc {
				if strings.HasPrefix(d, "sink.") && strings.HasSuffix(d, "."+parts[2]) {
					return true
				}
			}
		}
	}
	return false
}
