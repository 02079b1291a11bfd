// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/execfaild/execfaild/config"
	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/probe/event"
)

func runTestSinks(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("test-sinks", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 30*time.Second, "give up on a sink after `duration`")
	path := fs.String("config", "", "test the sinks of this configuration `file`, from this process")
	local := fs.Bool("local", false, "test from this process even when the daemon runs")
	dir := fs.String("dir", defaultRuntimeDir, "the running daemon's runtime `directory`")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: execfaild test-sinks [--timeout D] [--local] [--config FILE | FILE]\n\n"+
			"Sends one synthetic failed exec, marked in every sink as a test, to every sink\n"+
			"directly, bypassing filters, dedup and rate limits, and prints each sink's\n"+
			"result; exits 1 when any failed. When the daemon runs and no file is named,\n"+
			"the running daemon sends it, as the service runs: its sandbox, its user, its\n"+
			"configuration. Otherwise (or with --local) this process tests FILE (default\n"+
			"%s).\n\n", config.DefaultPath)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 1:
		fs.Usage()
		return exitError{code: 2, err: fmt.Errorf("at most one PATH, got %d", fs.NArg())}
	case fs.NArg() == 1 && *path != "":
		fs.Usage()
		return exitError{code: 2, err: fmt.Errorf("name the file either with --config or as an argument, not both")}
	case fs.NArg() == 1:
		*path = fs.Arg(0)
	}
	var results []sinkResult
	if pid := runningDaemon(*dir); pid > 0 && *path == "" && !*local {
		fmt.Fprintf(stderr, "testing through the running daemon (pid %d)\n", pid)
		r, err := askDaemonToTest(*dir, pid, 2**timeout+10*time.Second, 100*time.Millisecond)
		if err != nil {
			return err
		}
		results = r
	} else {
		c, err := config.Load(*path)
		if err != nil {
			return err
		}
		nc := c.Notify()
		env := notify.Env{
			Host:   nc.Hostname(notify.Env{}),
			Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		}
		results = testAll(c.Sinks, env, nc.Labels, *timeout)
	}
	failed := 0
	for _, r := range results {
		if r.Err == "" {
			fmt.Fprintf(stdout, "ok   %s\n", r.Sink)
			continue
		}
		failed++
		hint := ""
		if r.Permanent {
			hint = " (the destination refused it: fix the configuration, retrying will not help)"
		}
		fmt.Fprintf(stdout, "FAIL %s: %s%s\n", r.Sink, r.Err, hint)
	}
	if failed > 0 {
		return exitError{code: 1, err: fmt.Errorf("%d of %d sinks failed", failed, len(results))}
	}
	return nil
}

// sinkResult is one sink's, or one replica's, answer to the test; the
// daemon hands it to `execfaild test-sinks` as JSON.
type sinkResult struct {
	Sink      string `json:"sink"` // "slack/ops", "alertmanager/cluster replica 2"
	Err       string `json:"error,omitempty"`
	Permanent bool   `json:"permanent,omitempty"`
}

// testAll tests every sink at once, so the whole test takes one sink's
// timeout at most; the results keep the sinks' order.
func testAll(sinks []notify.SinkEntry, env notify.Env, labels map[string]string, timeout time.Duration) []sinkResult {
	per := make([][]sinkResult, len(sinks))
	var wg sync.WaitGroup
	for i, e := range sinks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, r := range testSink(e, env, labels, timeout) {
				sr := sinkResult{Sink: e.Kind + "/" + e.Config.Common().Name + r.replica}
				if r.err != nil {
					sr.Err, sr.Permanent = r.err.Error(), notify.IsPermanent(r.err)
				}
				per[i] = append(per[i], sr)
			}
		}()
	}
	wg.Wait()
	var out []sinkResult
	for _, rs := range per {
		out = append(out, rs...)
	}
	return out
}

// result is one sink's, or one replica's, answer to the test.
type result struct {
	replica string // " replica 2"; empty for a sink of one
	err     error
}

// testSink sends to the sink, or to each of its replicas in turn: an
// operator wants to know which replica is broken, not only that one took
// the notification.
func testSink(e notify.SinkEntry, env notify.Env, labels map[string]string, timeout time.Duration) []result {
	s, err := e.Config.New(env)
	if err != nil {
		return []result{{err: fmt.Errorf("build: %w", err)}}
	}
	replicas, ok := s.(notify.Replicas)
	if !ok {
		return []result{{err: send(s, env.Host, labels, timeout)}}
	}
	var out []result
	for i, r := range replicas {
		out = append(out, result{replica: fmt.Sprintf(" replica %d", i+1), err: send(r, env.Host, labels, timeout)})
	}
	return out
}

// send delivers one synthetic failure to s and closes it.
func send(s notify.Sink, host string, labels map[string]string, timeout time.Duration) (err error) {
	defer func() {
		if cerr := s.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close: %w", cerr)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ev := event.Synthetic(time.Now(), host)
	ev.Labels = labels
	// Every sink says it is a test: it must not page anyone as a real one.
	ev.Test = true
	if err := s.Send(ctx, &ev); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("no answer within %v: %w", timeout, err)
		}
		return err
	}
	return nil
}
