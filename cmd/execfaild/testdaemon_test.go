// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/execfaild/execfaild/cmd/execfaild/internal/daemon"
	"github.com/execfaild/execfaild/config"
	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/probe/event"
)

// TestTestSinksThroughTheDaemon: with a daemon running and no file named,
// test-sinks has the daemon send the test (its process, user and sandbox,
// its configuration in use) and prints the daemon's result per sink,
// exiting 1 when one failed. A stand-in daemon: this process, with a real
// pipeline, answering SIGUSR1 as the real one does.
func TestTestSinksThroughTheDaemon(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "events.jsonl")
	cfgFile := filepath.Join(dir, "c.toml")
	os.WriteFile(cfgFile, []byte("[[sink.file]]\nname = \"good\"\npath = \""+target+"\"\n[[sink.file]]\nname = \"bad\"\npath = \""+dir+"\"\n"), 0o600)
	c, err := config.Load(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := notify.New(c.Notify(), notify.Env{Host: event.LocalHost()})
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close(context.Background())
	log := slog.New(slog.DiscardHandler)
	statusWriter(dir, log)(daemon.Snapshot{PID: os.Getpid(), Time: time.Now(), Mode: "fentry"})
	test := daemonTester(dir, pl, log)
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	asked := 0
	go func() {
		for range usr1 {
			asked++
			test()
		}
	}()

	var out, errb bytes.Buffer
	code := run([]string{"test-sinks", "--dir", dir}, &out, &errb)
	if code != 1 || asked != 1 || !strings.Contains(errb.String(), "testing through the running daemon") ||
		!strings.Contains(out.String(), "ok   file/good\n") || !strings.Contains(out.String(), "FAIL file/bad: ") {
		t.Fatalf("exit %d, daemon asked %d times:\n%s%s", code, asked, out.String(), errb.String())
	}
	b, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	var ev event.Event
	if err := json.Unmarshal(b, &ev); err != nil || !ev.Test || ev.Host != event.LocalHost() {
		t.Errorf("the daemon's test event: %s (%v)", b, err)
	}

	// --local, or a file named, tests from this process, not the daemon.
	out.Reset()
	errb.Reset()
	run([]string{"test-sinks", "--dir", dir, "--local", "--config", cfgFile}, &out, &errb)
	if asked != 1 || strings.Contains(errb.String(), "through the running daemon") || !strings.Contains(out.String(), "ok   file/good\n") {
		t.Errorf("--local went through the daemon (asked %d times):\n%s%s", asked, out.String(), errb.String())
	}
}
