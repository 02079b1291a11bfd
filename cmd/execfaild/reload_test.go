// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/execfaild/execfaild/cmd/execfaild/internal/daemon"
)

// TestReloadReportsTheDaemonsVerdict: `execfaild reload` (the unit's
// ExecReload=) exits non-zero when the daemon refused the file, so that
// systemctl reload does too; a verdict left from an earlier reload is not
// taken for this one's.
func TestReloadReportsTheDaemonsVerdict(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("RUNTIME_DIRECTORY", dir)
	path := filepath.Join(dir, verdictName)
	// A stand-in daemon: this process, answering SIGHUP as the real one
	// does, with the verdict the case sets.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	answer := make(chan daemon.ReloadResult, 1)
	go func() {
		for range hup {
			r := <-answer
			var ts unix.Timespec
			unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
			r.Started = uint64(ts.Sec)*1e6 + uint64(ts.Nsec)/1e3
			if err := writeVerdict(path, r); err != nil {
				t.Error(err)
			}
		}
	}()
	pid := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		name   string
		before string // the verdict file before the reload
		answer daemon.ReloadResult
		code   int
		stderr string
	}{
		{"applied", "", daemon.ReloadResult{}, 0, ""},
		{"refused", "", daemon.ReloadResult{Rejected: true, Message: "/etc/execfaild.toml:5: filter.exclude_errnos: unknown errno"}, exitConfig,
			"execfaild reload: reload rejected, previous configuration in use: /etc/execfaild.toml:5: filter.exclude_errnos: unknown errno\n"},
		{"refused after an earlier success", "1 ok\n", daemon.ReloadResult{Rejected: true, Message: "bad"}, exitConfig,
			"execfaild reload: reload rejected, previous configuration in use: bad\n"},
		{"applied with a warning", "", daemon.ReloadResult{Message: "closing the previous sinks: timeout"}, 0,
			"warning: configuration reloaded; closing the previous sinks: timeout\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(path)
			if tc.before != "" {
				os.WriteFile(path, []byte(tc.before), 0o600)
			}
			answer <- tc.answer
			var stdout, stderr bytes.Buffer
			code := run([]string{"reload", "--pid", pid}, &stdout, &stderr)
			if code != tc.code || stderr.String() != tc.stderr {
				t.Errorf("exit %d, stderr %q; want %d, %q", code, stderr.String(), tc.code, tc.stderr)
			}
		})
	}
}

func TestReloadNeedsTheUnit(t *testing.T) {
	t.Setenv("RUNTIME_DIRECTORY", "")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"reload", "--pid", "1"}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "RUNTIME_DIRECTORY is not set") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
	t.Setenv("MAINPID", "")
	stderr.Reset()
	if code := run([]string{"reload"}, &stdout, &stderr); code != 2 || strings.Count(stderr.String(), "\n") != 1 {
		t.Errorf("no pid: exit %d, stderr %q; want 2 and one line", code, stderr.String())
	}
}

func TestVerdictRoundTrip(t *testing.T) {
	for _, r := range []daemon.ReloadResult{
		{Started: 12},
		{Started: 1 << 40, Rejected: true, Message: "a: b c"},
		{Started: 7, Message: "warn"},
	} {
		got, err := parseVerdict([]byte(formatVerdict(r)))
		if err != nil || got != r {
			t.Errorf("%+v -> %q -> %+v, %v", r, formatVerdict(r), got, err)
		}
	}
	for _, bad := range []string{"", "x ok", "12 maybe"} {
		if _, err := parseVerdict([]byte(bad)); err == nil {
			t.Errorf("parseVerdict(%q) accepted", bad)
		}
	}
}
