// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/probe"
	"github.com/execfaild/execfaild/probe/event"
)

func runWatch(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print one JSON event per line")
	mode := fs.String("mode", probe.ModeAuto, "attach mode: one of "+strings.Join(probe.Modes, ", "))
	env := fs.String("environment", "redact", "environment capture: redact, none or full")
	raw := fs.Bool("raw", false, "print every failed syscall; by default an execvp-style PATH search that finds the program prints nothing and one that finds it nowhere prints one line")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return exitError{code: 2, err: fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	cfg := probe.DefaultConfig()
	cfg.Mode = *mode
	cfg.Environment = *env
	p, err := probe.New(cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	dropPrivileges(p, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		<-sigs
		// What the ring buffer already holds is still printed.
		p.Drain(time.Now().Add(watchDrainTimeout))
	}()

	fmt.Fprintf(stderr, "execfaild watch: attached in %s mode\n", p.Mode())
	fold := watchFold{raw: *raw, hold: notify.PathSearchHold, lostMarkers: p.LostMarkers}
	if err := watchRecords(p, newPrinter(stdout, *asJSON), fold); err != nil {
		return err
	}
	// Close first: it counts what the drain left behind.
	if err := p.Close(); err != nil {
		return fmt.Errorf("close probe: %w", err)
	}
	if line := watchSummary(p.Stats()); line != "" {
		fmt.Fprintln(stderr, line)
	}
	return nil
}

// recordSource is what watch reads: the probe, or a test's records.
type recordSource interface {
	Read() (probe.Record, error)
}

// watchFold is how watch folds execvp-style PATH searches: as the daemon
// does (a search that finds the program shows nothing, one that finds it
// nowhere one line), or not at all (raw: every failed syscall).
type watchFold struct {
	raw         bool
	hold        time.Duration
	lostMarkers func() uint64
}

// watchRecords prints every failure src reports until it is closed.
func watchRecords(src recordSource, pr *printer, f watchFold) error {
	if f.raw {
		return readRecords(src, pr.print, func(*event.Success) {})
	}
	searches := notify.NewPathSearches(f.hold, f.lostMarkers, pr.print)
	err := readRecords(src, searches.Failure, searches.Success)
	// What the probe had not concluded by the end is shown as it stands.
	searches.Flush()
	if err != nil {
		return err
	}
	return pr.failed()
}

// readRecords hands src's records to failure and success until src is
// closed or the printer failed.
func readRecords(src recordSource, failure func(*event.Event), success func(*event.Success)) error {
	for {
		rec, err := src.Read()
		if errors.Is(err, probe.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case rec.Failure != nil:
			failure(rec.Failure)
		case rec.Success != nil:
			success(rec.Success)
		}
	}
}

// printer writes failures as lines under a header, or as JSON. Folded
// searches come from a timer, so it takes one failure at a time and keeps
// the first write error.
type printer struct {
	mu  sync.Mutex
	w   io.Writer
	enc *json.Encoder // nil for lines
	err error
}

func newPrinter(w io.Writer, asJSON bool) *printer {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		return &printer{w: w, enc: enc}
	}
	fmt.Fprintf(w, "%-12s %-7s %-16s %-8s %s\n", "TIME", "PID", "COMM", "ERROR", "PATH / ARGS")
	return &printer{w: w}
}

func (pr *printer) print(e *event.Event) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.err != nil {
		return
	}
	var err error
	if pr.enc != nil {
		err = pr.enc.Encode(e)
	} else {
		_, err = fmt.Fprintln(pr.w, formatLine(e))
	}
	if err != nil {
		pr.err = fmt.Errorf("write event: %w", err)
	}
}

// failed is the first write error.
func (pr *printer) failed() error {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.err
}

// watchDrainTimeout bounds how long records still in the ring buffer are
// printed after an interrupt.
const watchDrainTimeout = 2 * time.Second

// watchSummary names every kind of loss apart, or is empty when nothing
// was lost.
func watchSummary(s probe.Stats) string {
	if s.LostFailures == 0 && s.LostMarkers == 0 && s.Undecodable == 0 && s.Undrained == 0 {
		return ""
	}
	return fmt.Sprintf("execfaild watch: %d failures; lost %d failures, %d markers, %d undecodable, %d undrained",
		s.Failures, s.LostFailures, s.LostMarkers, s.Undecodable, s.Undrained)
}

// formatLine is one execsnoop-like line. Every string is quoted so a
// trailing "\r" or a control character in a path or argument is visible;
// the diagnosis's code is a key=value like the stage, its sentence ends
// the line.
func formatLine(e *event.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-12s %-7d %-16s %-8s %s", e.Time.Format("15:04:05.000"), e.Process.PID,
		strconv.Quote(e.Process.Comm), e.Error, strconv.Quote(e.Path))
	if e.KernelInvoked {
		b.WriteString(" (kernel)")
	}
	if e.Binary != nil && e.Binary.Path != "" && e.Binary.Path != e.Path {
		b.WriteString(" -> " + strconv.Quote(e.Binary.Path))
	}
	if e.InterpreterPath != "" {
		b.WriteString(" interpreter " + strconv.Quote(e.InterpreterPath))
	}
	if e.Stage != "" {
		b.WriteString(" stage=" + e.Stage)
	}
	if e.Cause != "" {
		b.WriteString(" cause=" + e.Cause)
	}
	// A folded PATH search counts one failure per directory tried; only
	// more than that are repeats.
	if e.Count > 1 && e.FirstSeen != nil && e.Count > uint64(len(e.Tried)) {
		// Repeats the kernel counted: one line for all of them.
		fmt.Fprintf(&b, " ×%d since %s", e.Count, e.FirstSeen.Format("15:04:05.000"))
	} else {
		b.WriteString(" args")
		for _, a := range e.Arguments {
			b.WriteString(" " + strconv.Quote(a))
		}
		if e.ArgumentsTruncated {
			b.WriteString(" …")
		}
	}
	if e.CauseText != "" {
		// The sentence last, where it can run on; printable like the
		// rest of the line.
		b.WriteString(" — " + notify.Sentence(e.CauseText))
		if e.CauseInferred {
			b.WriteString(" (inferred)")
		}
	}
	return b.String()
}
