// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/execfaild/execfaild/config"
	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/probe/event"
)

func runTestSinks(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("test-sinks", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 30*time.Second, "give up on a sink after `duration`")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: execfaild test-sinks [-timeout D] [PATH]\n\n"+
			"Sends one synthetic failed exec directly to every sink of PATH (default %s),\n"+
			"bypassing filters, dedup and rate limits, and prints each sink's result.\n\n", config.DefaultPath)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return exitError{code: 2, err: fmt.Errorf("at most one PATH, got %d", fs.NArg())}
	}
	c, err := config.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	nc := c.Notify()
	env := notify.Env{
		Host:   nc.Hostname(notify.Env{}),
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	failed, tested := 0, 0
	for _, e := range c.Sinks {
		for _, r := range testSink(e, env, nc.Labels, *timeout) {
			tested++
			name := e.Kind + "/" + e.Config.Common().Name + r.replica
			if r.err != nil {
				failed++
				hint := ""
				if notify.IsPermanent(r.err) {
					hint = " (the destination refused it: fix the configuration, retrying will not help)"
				}
				fmt.Fprintf(stdout, "FAIL %s: %v%s\n", name, r.err, hint)
				continue
			}
			fmt.Fprintf(stdout, "ok   %s\n", name)
		}
	}
	if failed > 0 {
		return exitError{code: 1, err: fmt.Errorf("%d of %d sinks failed", failed, tested)}
	}
	return nil
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
