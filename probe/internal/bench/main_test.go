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
