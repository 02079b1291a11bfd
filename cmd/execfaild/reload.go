// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/execfaild/execfaild/cmd/execfaild/internal/daemon"
)

// Exit statuses beyond 0, 1 (a fatal error) and 2 (usage), from
// sysexits.h, so the unit can tell a problem a restart cannot fix
// (RestartPreventExitStatus=) from one it may.
const (
	// exitUnavailable: the kernel or the privileges cannot run the probe.
	exitUnavailable = 69
	// exitConfig: the configuration file is refused.
	exitConfig = 78
)

// verdictName is the file in the unit's RuntimeDirectory where the daemon
// writes each reload's outcome for `execfaild reload`.
const verdictName = "reload-verdict"

// verdictPath is where the daemon and `execfaild reload` meet: systemd
// sets RUNTIME_DIRECTORY (RuntimeDirectory=) for every command of the
// unit; "" outside the unit.
func verdictPath() string {
	dir := runtimeDir()
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, verdictName)
}

// formatVerdict is the verdict file's one line: "<started µs> ok|warning|
// rejected [message]".
func formatVerdict(r daemon.ReloadResult) string {
	state := "ok"
	switch {
	case r.Rejected:
		state = "rejected"
	case r.Message != "":
		state = "warning"
	}
	line := strconv.FormatUint(r.Started, 10) + " " + state
	if r.Message != "" {
		line += " " + strings.ReplaceAll(r.Message, "\n", " ")
	}
	return line + "\n"
}

// parseVerdict reads formatVerdict's line back.
func parseVerdict(b []byte) (daemon.ReloadResult, error) {
	line := strings.TrimSuffix(string(b), "\n")
	started, rest, _ := strings.Cut(line, " ")
	state, msg, _ := strings.Cut(rest, " ")
	n, err := strconv.ParseUint(started, 10, 64)
	if err != nil {
		return daemon.ReloadResult{}, fmt.Errorf("reload verdict %q: bad start time", line)
	}
	r := daemon.ReloadResult{Started: n, Message: msg}
	switch state {
	case "ok", "warning":
	case "rejected":
		r.Rejected = true
	default:
		return daemon.ReloadResult{}, fmt.Errorf("reload verdict %q: unknown state %q", line, state)
	}
	return r, nil
}

// writeVerdict replaces the verdict file in one rename, so a reader never
// sees half a line.
func writeVerdict(path string, r daemon.ReloadResult) error {
	if err := writeAtomically(path, []byte(formatVerdict(r))); err != nil {
		return fmt.Errorf("reload verdict: %w", err)
	}
	return nil
}

// runReload is the unit's ExecReload=: it asks the daemon to reload
// (SIGHUP) and waits for the daemon's own verdict on the file, so that
// `systemctl reload` fails when the file was refused (and the previous
// configuration stays in use), instead of reporting success either way.
func runReload(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pid := fs.Int("pid", 0, "the daemon's `pid` (default $MAINPID, which systemd sets for ExecReload=)")
	wait := fs.Duration("wait", 90*time.Second, "give up when no verdict arrived within this `duration`")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: execfaild reload [--pid PID] [--wait DURATION]\n\n"+
			"Makes the running daemon re-read its configuration and waits for its verdict:\n"+
			"exit 0 when the new file is in use, %d when it was refused (the previous one\n"+
			"stays in use). For the unit's ExecReload=; run `systemctl reload execfaild`.\n\n", exitConfig)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return exitError{2, fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if *pid == 0 {
		*pid, _ = strconv.Atoi(os.Getenv("MAINPID"))
	}
	if *pid <= 0 {
		return exitError{2, errors.New("no daemon to reload: give --pid, or run it as the unit's ExecReload= (which sets $MAINPID)")}
	}
	path := verdictPath()
	if path == "" {
		return errors.New("the daemon's verdict is kept in the unit's RuntimeDirectory, and RUNTIME_DIRECTORY is not set: run `systemctl reload execfaild`, or send the daemon SIGHUP yourself")
	}
	r, err := requestReload(path, *pid, *wait, 100*time.Millisecond)
	if err != nil {
		return err
	}
	if r.Rejected {
		return exitError{exitConfig, fmt.Errorf("reload rejected, previous configuration in use: %s", r.Message)}
	}
	if r.Message != "" {
		fmt.Fprintln(stderr, "warning: configuration reloaded; "+r.Message)
	}
	return nil
}

// requestReload sends pid SIGHUP and waits, polling every poll, for the
// verdict of a reload that began after the signal.
func requestReload(path string, pid int, wait, poll time.Duration) (daemon.ReloadResult, error) {
	var r daemon.ReloadResult
	err := askDaemon(pid, unix.SIGHUP, path, "reload verdict", wait, poll, func(b []byte) (uint64, error) {
		var err error
		r, err = parseVerdict(b)
		return r.Started, err
	})
	return r, err
}

// askDaemon sends pid sig and waits, polling path every poll, for an answer
// the daemon began after the signal: parse reads the file and says when
// its answer began (CLOCK_MONOTONIC µs). what names the answer in errors.
func askDaemon(pid int, sig unix.Signal, path, what string, wait, poll time.Duration, parse func([]byte) (uint64, error)) error {
	asked := daemon.MonotonicUsec()
	if err := unix.Kill(pid, sig); err != nil {
		return fmt.Errorf("signal the daemon (pid %d): %w", pid, err)
	}
	deadline := time.Now().Add(wait)
	for {
		b, err := os.ReadFile(path)
		switch {
		case err == nil:
			started, err := parse(b)
			if err != nil {
				return err
			}
			if started >= asked {
				return nil
			}
		case !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("read the %s: %w", what, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the daemon (pid %d) gave no %s within %v: see journalctl -u execfaild", pid, what, wait)
		}
		if err := unix.Kill(pid, 0); errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("the daemon (pid %d) exited before its %s", pid, what)
		}
		time.Sleep(poll)
	}
}
