// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The successful-exec kind is only meaningful if the generated program is
// a real executable that exits 0 on this kernel.
func TestTinyELFRunsAndExitsZero(t *testing.T) {
	p := filepath.Join(t.TempDir(), "exit0")
	if err := os.WriteFile(p, tinyELF(), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(p).CombinedOutput()
	if err != nil {
		t.Fatalf("run generated ELF: %v (output %q)", err, out)
	}
	if len(out) != 0 {
		t.Errorf("generated ELF printed %q", out)
	}
}

func TestWorkerReportsWrongErrno(t *testing.T) {
	// A worker told to expect EACCES from a missing file must refuse to
	// report a time: the bench never measures the wrong failure.
	if rc := worker("fail:13:1:" + filepath.Join(t.TempDir(), "missing")); rc == 0 {
		t.Error("worker accepted ENOENT where EACCES was expected")
	}
}

// A hook on every syscall's exit runs for the whole machine: only one
// run per exec can be the failing exec's own, at its mean run time. A
// program the observer runs itself is never the caller's.
func TestHookTimeInExecs(t *testing.T) {
	before := progRuns{"per_exec": {runs: 5, ns: 500}}
	now := progRuns{
		"per_exec":    {runs: 105, ns: 100500}, // 100 runs, 1000 ns each
		"per_syscall": {runs: 1000, ns: 80000}, // 80 ns each, 10 per exec
		"flush":       {runs: 3, ns: 9000, daemonSide: true},
		"idle":        {runs: 7, ns: 70}, // no new runs: dropped
	}
	before["idle"] = progRun{runs: 7, ns: 70}
	d := now.since(before)
	if _, ok := d["idle"]; ok {
		t.Errorf("a program that did not run is listed: %+v", d)
	}
	if got, want := d.inExecs(100), 100*1000.0+100*80.0; got != want {
		t.Errorf("in execs: %v ns, want %v", got, want)
	}
	if got := d.hookRuns(); got != 1100 {
		t.Errorf("hook runs %d, want 1100", got)
	}
}
