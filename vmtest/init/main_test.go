package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
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
	if !strings.Contains(out, "=== VMTEST WARN job stuck: stopped after 1s without output") {
		t.Errorf("no idle stop said for the stuck job:\n%s", out)
	}
}
