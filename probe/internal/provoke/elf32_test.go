// SPDX-License-Identifier: Apache-2.0

package provoke

import (
	"bytes"
	"debug/elf"
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

// TestELF64Programs: debug/elf reads the generated programs as a loader
// would: the machine, and the loader PT_INTERP names.
func TestELF64Programs(t *testing.T) {
	native, loader, foreign, _ := machine()
	f, err := elf.NewFile(bytes.NewReader(MissingLoaderProgram(loader)))
	if err != nil {
		t.Fatal(err)
	}
	if f.Machine != elf.Machine(native) || len(f.Progs) != 1 || f.Progs[0].Type != elf.PT_INTERP {
		t.Fatalf("machine %v progs %d, want %d with one PT_INTERP", f.Machine, len(f.Progs), native)
	}
	b := make([]byte, f.Progs[0].Filesz)
	if _, err := f.Progs[0].ReadAt(b, 0); err != nil || string(b) != loader+"\x00" {
		t.Errorf("PT_INTERP %q (%v), want %q", b, err, loader)
	}
	g, err := elf.NewFile(bytes.NewReader(ForeignProgram()))
	if err != nil {
		t.Fatal(err)
	}
	if g.Machine != elf.Machine(foreign) || g.Type != elf.ET_EXEC {
		t.Errorf("foreign program: machine %v type %v", g.Machine, g.Type)
	}
}
