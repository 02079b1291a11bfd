package main

import (
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := runJob(tc.job); got != tc.want {
				t.Fatalf("runJob(%v) = %d, want %d", tc.job.Argv, got, tc.want)
			}
		})
	}
}
