// SPDX-License-Identifier: Apache-2.0

package privs

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const childEnv = "EXECFAILD_PRIVS_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(child())
	}
	os.Exit(m.Run())
}

// child drops to Runtime, then prints every thread's four capability sets
// as the kernel reports them.
func child() int {
	if _, err := Drop(Runtime); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	tasks, _ := filepath.Glob("/proc/self/task/*/status")
	for _, st := range tasks {
		f, err := os.Open(st)
		if err != nil {
			continue // a thread that ended meanwhile
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), ":")
			switch k {
			case "CapInh", "CapPrm", "CapEff", "CapAmb":
				fmt.Printf("%s %s %s\n", filepath.Base(filepath.Dir(st)), k, strings.TrimSpace(v))
			}
		}
		f.Close()
	}
	return 0
}

func requireAllCaps(t *testing.T) {
	t.Helper()
	eff, err := Current()
	if err != nil {
		t.Fatal(err)
	}
	const need = 1<<CapBPF | 1<<CapSysAdmin | Runtime
	if eff&need == need {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("needs root with %s: CI runs as root", Names(need))
	}
	t.Skip("needs root")
}

// TestDropAllThreads: after Drop every thread keeps exactly the runtime
// capabilities in its effective and permitted sets, and nothing inheritable
// or ambient.
func TestDropAllThreads(t *testing.T) {
	requireAllCaps(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	threads := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("child said %q", line)
		}
		threads[f[0]] = true
		got, err := strconv.ParseUint(f[2], 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		want := uint64(0)
		if f[1] == "CapPrm" || f[1] == "CapEff" {
			want = Runtime
		}
		if got != want {
			t.Errorf("thread %s %s = %s, want %s", f[0], f[1], Names(got), Names(want))
		}
	}
	if len(threads) < 2 {
		t.Errorf("child reported %d threads; a Go process has several, and each must be checked", len(threads))
	}
}

// TestWithoutRestores: the trial lowers the effective set on its thread
// only while f runs.
func TestWithoutRestores(t *testing.T) {
	requireAllCaps(t)
	var during uint64
	err := Without(1<<CapBPF, func() error {
		var err error
		during, err = Current()
		if err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if during&(1<<CapBPF) != 0 {
		t.Errorf("CAP_BPF still effective during the trial")
	}
	after, err := Current()
	if err != nil {
		t.Fatal(err)
	}
	if after&(1<<CapBPF) == 0 {
		t.Errorf("CAP_BPF not restored after the trial")
	}
}
