// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/execfaild/execfaild/internal/poll"
)

// fileSinkConfig builds a sink that reads a secret file in New, as the
// HTTP sinks do.
type fileSinkConfig struct {
	SinkCommon
	file string
	sink *recSink
}

func (c *fileSinkConfig) Validate() error { return nil }
func (c *fileSinkConfig) New(Env) (Sink, error) {
	if _, err := ResolveSecret("", c.file, "token"); err != nil {
		return nil, err
	}
	return c.sink, nil
}

func init() { RegisterSink("test-file", func() SinkConfig { return &fileSinkConfig{} }) }

// A reload whose sinks cannot be built is rejected as a whole: the error
// says so, Stats counts it, and the next failure is handled by the
// configuration that was running before.
func TestRejectedReloadKeepsRunningConfig(t *testing.T) {
	clk := &fakeClock{now: t0}
	old := &recSink{}
	p := setup(t, clk, old, nil)

	fresh := &recSink{}
	cfg := DefaultConfig()
	cfg.Spool.Dir = t.TempDir()
	good := &testConfig{sink: fresh}
	good.Name = "new"
	bad := &fileSinkConfig{file: filepath.Join(t.TempDir(), "absent"), sink: &recSink{}}
	cfg.Sinks = []SinkEntry{{Kind: "test", Config: good}, {Kind: "test-file", Config: bad}}

	err := p.Reload(context.Background(), cfg)
	var rej *RejectedError
	if !errors.As(err, &rej) || !strings.Contains(err.Error(), "sink.test-file[0]: token_file: read secret") {
		t.Fatalf("Reload = %v, want a *RejectedError naming the sink and key", err)
	}
	if old.closed {
		t.Error("the running sink was closed by a rejected reload")
	}

	// Invalid settings are rejected the same way.
	cfg2 := DefaultConfig()
	cfg2.Spool.Dir = t.TempDir()
	cfg2.Dedup.MaxKeys = -1
	cfg2.Sinks = []SinkEntry{{Kind: "test", Config: &testConfig{sink: fresh}}}
	if err := p.Reload(context.Background(), cfg2); !errors.As(err, &rej) {
		t.Fatalf("Reload with a bad setting = %v, want a *RejectedError", err)
	}

	p.Handle(failure(clk.Now(), 7, "/bin/next", -13))
	poll.Until(t, "running sink", func() bool { return old.total() == 1 })
	if fresh.total() != 0 {
		t.Errorf("the rejected configuration's sink got %d failures", fresh.total())
	}
	st := p.Stats()
	if st.ReloadsRejected != 2 || len(st.Sinks) != 1 || st.Sinks[0].Name != "rec" {
		t.Errorf("stats after rejected reloads: rejected %d, sinks %+v", st.ReloadsRejected, st.Sinks)
	}
}
