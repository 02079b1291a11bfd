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
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/execfaild/execfaild/cmd/execfaild/internal/daemon"
	"github.com/execfaild/execfaild/notify"
)

// statusName is the file in the unit's RuntimeDirectory holding the
// snapshot STATUS= was last made from, for `execfaild status`.
const statusName = "status.json"

// defaultRuntimeDir is the unit's RuntimeDirectory= as seen from outside
// the unit, where RUNTIME_DIRECTORY is not set.
const defaultRuntimeDir = "/run/execfaild"

// statusWriter keeps the latest snapshot in dir; nil outside the unit.
func statusWriter(dir string, log *slog.Logger) func(daemon.Snapshot) {
	if dir == "" {
		return nil
	}
	path := filepath.Join(dir, statusName)
	failed := false
	return func(s daemon.Snapshot) {
		b, err := json.Marshal(s)
		if err == nil {
			err = writeAtomically(path, append(b, '\n'))
		}
		// Said once, not at every refresh.
		if err != nil && !failed {
			log.Warn("execfaild status will be stale: " + err.Error())
		}
		failed = err != nil
	}
}

// runtimeDir is the unit's RuntimeDirectory from inside the unit.
func runtimeDir() string {
	dir, _, _ := strings.Cut(os.Getenv("RUNTIME_DIRECTORY"), ":")
	return dir
}

// writeAtomically replaces path in one rename, so a reader never sees half
// of it.
func writeAtomically(path string, b []byte) error {
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// runStatus prints what the running daemon last reported: the probe mode,
// what was seen and lost, and each sink's state.
func runStatus(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", defaultRuntimeDir, "the daemon's runtime `directory` (the unit's RuntimeDirectory=)")
	asJSON := fs.Bool("json", false, "print the daemon's snapshot as JSON")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: execfaild status [--json] [--dir DIR]\n\n"+
			"Prints what the running daemon last reported (STATUS= is made from the same\n"+
			"snapshot): the probe mode, failures seen and lost, and each sink's state:\n"+
			"ok, retrying, failing: <reason>, with what it has spooled.\n\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return exitError{2, fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	s, err := readSnapshot(*dir)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	return printStatus(stdout, s, time.Now())
}

// readSnapshot reads the daemon's last snapshot from its runtime directory.
func readSnapshot(dir string) (daemon.Snapshot, error) {
	var s daemon.Snapshot
	path := filepath.Join(dir, statusName)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		// sysexits' EX_UNAVAILABLE: there is no daemon to ask.
		return s, exitError{exitUnavailable, fmt.Errorf("%s does not exist: is the service running? (systemctl status execfaild)", path)}
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("read %s: %w", path, err)
	}
	return s, nil
}

// printStatus renders a snapshot for a person.
func printStatus(w io.Writer, s daemon.Snapshot, now time.Time) error {
	st := s.Stats
	fmt.Fprintf(w, "mode %s, as of %s (%s ago)\n", s.Mode, s.Time.Format(time.DateTime), now.Sub(s.Time).Round(time.Second))
	fmt.Fprintf(w, "failed execs: %d seen, %d filtered\n", st.Detected, st.Filtered)
	fmt.Fprintf(w, "lost: %d failures, %d markers, %d undecodable, %d undrained\n",
		s.Loss.LostFailures, s.Loss.LostMarkers, s.Loss.Undecodable, s.Loss.Undrained)
	if s.LastReload != "" {
		fmt.Fprintln(w, s.LastReload)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SINK\tSTATE\tSENT\tFAILED\tSPOOLED\tQUEUED")
	for _, k := range st.Sinks {
		fmt.Fprintf(tw, "%s/%s\t%s\t%d\t%d\t%d\t%d\n", k.Kind, k.Name, sinkState(k.Failing, k.SpoolEntries), k.Delivered, k.Failed, k.SpoolEntries, k.Queued)
		for _, r := range k.Replicas {
			fmt.Fprintf(tw, "  replica %s\t%s\t%d\t%d\t%d\t\n", r.Name, sinkState(r.Failing, r.SpoolEntries), r.Delivered, r.Failed, r.SpoolEntries)
		}
	}
	return tw.Flush()
}

// sinkState is one word or phrase for a sink: ok, spooled N (replaying a
// backlog), retrying, or failing: <why>.
func sinkState(failing string, spooled int) string {
	switch {
	case failing == notify.FailingRetrying:
		return "retrying"
	case failing != "":
		return "failing: " + failing
	case spooled > 0:
		return fmt.Sprintf("spooled %d", spooled)
	}
	return "ok"
}
