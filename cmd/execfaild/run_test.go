package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestRunRejectsArguments(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"run", "extra"}, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), `unexpected argument "extra"`) {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

// A missing explicitly named file is fatal, in one line naming the file.
func TestRunMissingConfig(t *testing.T) {
	var out, errb bytes.Buffer
	path := t.TempDir() + "/absent.toml"
	code := run([]string{"run", "--config", path}, &out, &errb)
	msg := errb.String()
	if code != 1 || strings.Count(msg, "\n") != 1 || !strings.Contains(msg, path) {
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
