// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/execfaild/execfaild/cmd/execfaild/internal/daemon"
	"github.com/execfaild/execfaild/notify"
)

// testName is the file in the unit's RuntimeDirectory where the daemon
// leaves the outcome of the test `execfaild test-sinks` asked it for
// (SIGUSR1).
const testName = "test-sinks.json"

// testRun is the outcome of one test the daemon ran.
type testRun struct {
	// Started is CLOCK_MONOTONIC in µs when the daemon began: a test asked
	// for at time T is the first whose Started is not before T.
	Started uint64       `json:"started"`
	Results []sinkResult `json:"results"`
}

// daemonTester is the daemon's answer to SIGUSR1: every sink of the
// configuration in use gets the test failure from the daemon itself - its
// sandbox, its user, its credentials - and the outcome goes to dir; nil
// outside the unit.
func daemonTester(dir string, pl *notify.Pipeline, log *slog.Logger) func() {
	if dir == "" {
		return nil
	}
	return func() {
		started := daemon.MonotonicUsec()
		cfg := pl.Config()
		env := notify.Env{Host: cfg.Hostname(notify.Env{}), Logger: log}
		run := testRun{Started: started, Results: testAll(cfg.Sinks, env, cfg.Labels, 30*time.Second)}
		failed := 0
		for _, r := range run.Results {
			if r.Err != "" {
				failed++
			}
		}
		log.Info("test-sinks", "sinks", len(run.Results), "failed", failed)
		b, err := json.Marshal(run)
		if err == nil {
			err = writeAtomically(filepath.Join(dir, testName), append(b, '\n'))
		}
		if err != nil {
			log.Error("test-sinks: " + err.Error())
		}
	}
}

// runningDaemon is the pid of the daemon whose snapshot is in dir, 0 when
// none runs.
func runningDaemon(dir string) int {
	s, err := readSnapshot(dir)
	if err != nil || s.PID <= 0 {
		return 0
	}
	if err := unix.Kill(s.PID, 0); err != nil && !errors.Is(err, unix.EPERM) {
		return 0
	}
	return s.PID
}

// askDaemonToTest signals pid and waits, polling every poll, for a test
// that began after the signal.
func askDaemonToTest(dir string, pid int, wait, poll time.Duration) ([]sinkResult, error) {
	path := filepath.Join(dir, testName)
	var run testRun
	err := askDaemon(pid, unix.SIGUSR1, path, "test results", wait, poll, func(b []byte) (uint64, error) {
		run = testRun{}
		if err := json.Unmarshal(b, &run); err != nil {
			return 0, fmt.Errorf("read %s: %w", path, err)
		}
		return run.Started, nil
	})
	return run.Results, err
}
