// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/probe/event"
)

func TestRunRejectsArguments(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"run", "extra"}, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), `unexpected argument "extra"`) {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

// An unknown flag is a usage error: exit 2, the complaint printed once.
func TestUnknownFlagIsAUsageError(t *testing.T) {
	for _, cmd := range []string{"run", "check-config", "watch", "test-sinks", "probe-check", "reload"} {
		var out, errb bytes.Buffer
		code := run([]string{cmd, "--bogus"}, &out, &errb)
		if n := strings.Count(errb.String(), "flag provided but not defined: -bogus"); code != 2 || n != 1 {
			t.Errorf("%s --bogus: exit %d, complaint printed %d times; want 2 and once:\n%s", cmd, code, n, errb.String())
		}
	}
}

// A missing explicitly named file is fatal, in one line naming the file,
// with the configuration's own exit status (EX_CONFIG), which the unit
// does not restart on: starting again cannot fix a file.
func TestRunMissingConfig(t *testing.T) {
	var out, errb bytes.Buffer
	path := t.TempDir() + "/absent.toml"
	code := run([]string{"run", "--config", path}, &out, &errb)
	msg := errb.String()
	if code != exitConfig || strings.Count(msg, "\n") != 1 || !strings.Contains(msg, path) {
		t.Fatalf("exit %d, stderr %q", code, msg)
	}
}

// A file with an error exits EX_CONFIG too, naming file, line and key once.
func TestRunBrokenConfigExitStatus(t *testing.T) {
	path := t.TempDir() + "/broken.toml"
	if err := os.WriteFile(path, []byte("[filter]\nexclude_errnos = [\"ENOPE\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"run", "--config", path}, &out, &errb)
	msg := errb.String()
	if code != exitConfig || strings.Count(msg, "\n") != 1 || !strings.Contains(msg, path+":2") || !strings.Contains(msg, "exclude_errnos") {
		t.Fatalf("exit %d, stderr %q", code, msg)
	}
}

func TestFirstLineError(t *testing.T) {
	inner := errors.New("load bpf program: too large\n0: (85) call\n1: exit")
	err := firstLineError{inner}
	if err.Error() != "load bpf program: too large" {
		t.Errorf("Error() = %q", err.Error())
	}
	if !errors.Is(err, inner) {
		t.Error("firstLineError does not unwrap")
	}
}

func TestDaemonLoggerUnderJournal(t *testing.T) {
	var b bytes.Buffer
	t.Setenv("JOURNAL_STREAM", "8:1234")
	newDaemonLogger(&b).Info("ready", "mode", "fentry")
	if got := b.String(); got != "level=INFO msg=ready mode=fentry\n" {
		t.Errorf("under journald: %q", got)
	}
	b.Reset()
	t.Setenv("JOURNAL_STREAM", "")
	newDaemonLogger(&b).Info("ready")
	if !strings.HasPrefix(b.String(), "time=") {
		t.Errorf("outside journald the line should carry the time: %q", b.String())
	}
}

// Under journald an error and a warning carry their syslog priority, so
// journalctl -p err and -p warning show them; derived loggers share it.
func TestDaemonLoggerPriorities(t *testing.T) {
	var b bytes.Buffer
	t.Setenv("JOURNAL_STREAM", "8:1234")
	log := newDaemonLogger(&b)
	log.Error("reload rejected, previous configuration in use: /etc/execfaild.toml:5: filter.exclude_errnos: unknown errno")
	log.With("sink", "slack-ops").Warn("credentials rejected")
	log.Info("ready")
	want := "<3>level=ERROR msg=\"reload rejected, previous configuration in use: /etc/execfaild.toml:5: filter.exclude_errnos: unknown errno\"\n" +
		"<4>level=WARN msg=\"credentials rejected\" sink=slack-ops\n" +
		"level=INFO msg=ready\n"
	if b.String() != want {
		t.Errorf("under journald:\n%s\nwant:\n%s", b.String(), want)
	}
}

// A closed stdout (`execfaild run | head -c 50`) is the stdout sink's
// failure only: the write fails with EPIPE and the process lives on.
func TestBrokenStdoutDoesNotKill(t *testing.T) {
	if os.Getenv("EXECFAILD_TEST_BROKEN_STDOUT") == "1" {
		ignoreBrokenPipe()
		sc, _ := notify.NewSinkConfig("stdout")
		s, err := sc.New(notify.Env{Host: "h"})
		if err != nil {
			fmt.Fprintln(os.Stderr, "new:", err)
			os.Exit(3)
		}
		ev := event.Synthetic(time.Now(), "h")
		var sendErr error
		for range 100 {
			if sendErr = s.Send(context.Background(), &ev); sendErr != nil {
				break
			}
		}
		fmt.Fprintf(os.Stderr, "alive: %v\n", sendErr)
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenStdoutDoesNotKill$")
	cmd.Env = append(os.Environ(), "EXECFAILD_TEST_BROKEN_STDOUT=1")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	cmd.Stdout = w
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err = cmd.Run()
	w.Close()
	if err != nil || !strings.Contains(errb.String(), "alive:") || !strings.Contains(errb.String(), "broken pipe") {
		t.Fatalf("child: %v, stderr %q; want it alive with a broken-pipe error from the sink", err, errb.String())
	}
}
