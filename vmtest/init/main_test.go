// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadJobs(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "jobs.json")
	if err := os.WriteFile(file, []byte(`[
		{"name": "canary", "argv": ["/vmtest/bin/canary.test", "-test.v"], "env": ["A=1"], "dir": "/vmtest/pkg/canary", "timeout_sec": 30},
		{"argv": ["/bin/true"]}
	]`), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := loadJobs(file, []string{"--", "/bin/sh", "-c", "echo hi"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Job{
		{Name: "canary", Argv: []string{"/vmtest/bin/canary.test", "-test.v"}, Env: []string{"A=1"}, Dir: "/vmtest/pkg/canary", TimeoutSec: 30},
		{Name: "/bin/true", Argv: []string{"/bin/true"}},
		{Name: "cmdline", Argv: []string{"/bin/sh", "-c", "echo hi"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("loadJobs:\n got %+v\nwant %+v", got, want)
	}
}

func TestLoadJobsErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, content, want string }{
		{"bad json", `[{"argv": [}]`, "parse"},
		{"empty argv", `[{"name": "x", "argv": []}]`, `job 0 ("x"): argv is empty`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			if err := os.WriteFile(file, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := loadJobs(file, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
	jobs, err := loadJobs(filepath.Join(dir, "absent.json"), nil)
	if err != nil || len(jobs) != 0 {
		t.Fatalf("no file and no arguments: got %v, %v; want no jobs and no error", jobs, err)
	}
}

func TestRunJobExitCodes(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("needs /bin/sh")
	}
	for _, tc := range []struct {
		name string
		job  Job
		want int
	}{
		{"success", Job{Name: "ok", Argv: []string{"/bin/sh", "-c", "exit 0"}}, 0},
		{"exit code", Job{Name: "three", Argv: []string{"/bin/sh", "-c", "exit 3"}}, 3},
		{"env and dir", Job{Name: "env", Argv: []string{"/bin/sh", "-c", `[ "$X" = y ] && [ "$(pwd)" = /tmp ]`}, Env: []string{"X=y"}, Dir: "/tmp"}, 0},
		{"timeout", Job{Name: "slow", Argv: []string{"/bin/sh", "-c", "sleep 30"}, TimeoutSec: 1}, -1},
		{"missing binary", Job{Name: "absent", Argv: []string{"/nonexistent/prog"}}, -1},
		// The idle limit follows output: a job quiet for longer is
		// stopped, one that keeps writing runs past it.
		{"idle", Job{Name: "stuck", Argv: []string{"/bin/sh", "-c", "echo started; sleep 30"}, IdleSec: 1}, -1},
		{"progress", Job{Name: "busy", Argv: []string{"/bin/sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do echo $i; sleep 0.3; done"}, IdleSec: 2}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := runJob(tc.job); got != tc.want {
				t.Fatalf("runJob(%v) = %d, want %d", tc.job.Argv, got, tc.want)
			}
		})
	}
}

// TestRunJobReportsQuiet: the END marker says how long the job was silent
// at most, and an idle stop is said on the console.
func TestRunJobReportsQuiet(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("needs /bin/sh")
	}
	console, err := os.Create(filepath.Join(t.TempDir(), "console"))
	if err != nil {
		t.Fatal(err)
	}
	defer console.Close()
	if code := runJobOn(console, Job{Name: "pause", Argv: []string{"/bin/sh", "-c", "echo a; sleep 1.2; echo b"}}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if code := runJobOn(console, Job{Name: "stuck", Argv: []string{"/bin/sh", "-c", "sleep 30"}, IdleSec: 1}); code != -1 {
		t.Fatalf("stuck job: exit %d, want -1", code)
	}
	b, err := os.ReadFile(console.Name())
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	var quiet float64
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "=== VMTEST END pause ") {
			if _, err := fmt.Sscanf(line[strings.Index(line, "quiet="):], "quiet=%g", &quiet); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
		}
	}
	if quiet < 1.1 || quiet > 10 {
		t.Errorf("pause job: quiet=%v, want about 1.2 s\n%s", quiet, out)
	}
	if !strings.Contains(out, "a\nb\n") {
		t.Errorf("job output not copied:\n%s", out)
	}
	if !strings.Contains(out, "=== VMTEST WARN job stuck: stopped after 1s without progress") {
		t.Errorf("no idle stop said for the stuck job:\n%s", out)
	}
}

// TestRunJobBusyIsProgress: a job that works without writing (a BPF
// verifier run on a slow machine) is not stopped, and the console says it
// is busy; its process group's CPU time is what counts.
func TestRunJobBusyIsProgress(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("needs /bin/sh")
	}
	defer func(d time.Duration) { busyStep = d }(busyStep)
	busyStep = 500 * time.Millisecond
	console, err := os.Create(filepath.Join(t.TempDir(), "console"))
	if err != nil {
		t.Fatal(err)
	}
	defer console.Close()
	// A silent busy loop in a grandchild for 4 s, twice the idle limit.
	job := Job{Name: "verifier", Argv: []string{"/bin/sh", "-c", "/bin/sh -c 'end=$(($(date +%s) + 4)); while [ $(date +%s) -lt $end ]; do :; done'; echo done"}, IdleSec: 2}
	if code := runJobOn(console, job); code != 0 {
		b, _ := os.ReadFile(console.Name())
		t.Fatalf("a busy silent job was stopped: exit %d\n%s", code, b)
	}
	b, _ := os.ReadFile(console.Name())
	if !strings.Contains(string(b), "=== VMTEST BUSY verifier: no output for") {
		t.Errorf("no BUSY line:\n%s", b)
	}
}

func TestParseStat(t *testing.T) {
	// The command name holds a space and a parenthesis.
	line := "4242 (a b) c) S 1 4240 4240 0 -1 4194560 100 0 0 0 150 25 3 2 20 0 1 0 100 1000 10"
	g, cpu, ok := parseStat(line)
	if !ok || g != 4240 || cpu != 1800*time.Millisecond {
		t.Errorf("parseStat = %d, %v, %v; want 4240, 1.8s, true", g, cpu, ok)
	}
	if _, _, ok := parseStat("1 (x) S 0"); ok {
		t.Error("short line accepted")
	}
	if got := groupCPUTime("/proc", os.Getpid()+1<<22); got != 0 {
		t.Errorf("no such group: %v", got)
	}
}
