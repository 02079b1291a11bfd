package provoke

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// TestI386Program: the generated 32-bit program runs and reports the
// errno of its exec as its exit status.
func TestI386Program(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("a 32-bit x86 program runs on amd64 only")
	}
	p := filepath.Join(t.TempDir(), "ia32-prog")
	if err := os.WriteFile(p, I386Program("/nonexistent/execfaild-ia32", []string{"ia32-prog", "one"}), 0o755); err != nil {
		t.Fatal(err)
	}
	err := exec.Command(p).Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("run %s: %v, want exit status 2 (ENOENT)", p, err)
	}
	if ee.ExitCode() != 2 {
		t.Errorf("exit status %d, want 2 (ENOENT from its execve)", ee.ExitCode())
	}
}
