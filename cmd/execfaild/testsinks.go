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
	if err := fs.Parse(args); err != nil {
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
	env := notify.Env{
		Host:     event.LocalHost(),
		Logger:   slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		StateDir: stateDir(),
	}
	failed := 0
	for _, e := range c.Sinks {
		err := testSink(e, env, *timeout)
		if err != nil {
			failed++
			hint := ""
			if notify.IsPermanent(err) {
				hint = " (the destination refused it: fix the configuration, retrying will not help)"
			}
			fmt.Fprintf(stdout, "FAIL %s/%s: %v%s\n", e.Kind, e.Config.Common().Name, err, hint)
			continue
		}
		fmt.Fprintf(stdout, "ok   %s/%s\n", e.Kind, e.Config.Common().Name)
	}
	if failed > 0 {
		return exitError{code: 1, err: fmt.Errorf("%d of %d sinks failed", failed, len(c.Sinks))}
	}
	return nil
}

func testSink(e notify.SinkEntry, env notify.Env, timeout time.Duration) (err error) {
	s, err := e.Config.New(env)
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	defer func() {
		if cerr := s.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close: %w", cerr)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ev := event.Synthetic(time.Now(), env.Host)
	if err := s.Send(ctx, &ev); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("no answer within %v: %w", timeout, err)
		}
		return err
	}
	return nil
}
