// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestMissingCaps(t *testing.T) {
	bit := func(cs ...uint) uint64 {
		var m uint64
		for _, c := range cs {
			m |= 1 << c
		}
		return m
	}
	for _, tc := range []struct {
		name string
		eff  uint64
		want string
	}{
		{"none", 0, "CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN)"},
		{"bpf only", bit(capBPF), "CAP_PERFMON (or CAP_SYS_ADMIN)"},
		{"perfmon only", bit(capPerfmon), "CAP_BPF (or CAP_SYS_ADMIN)"},
		{"bpf and perfmon", bit(capBPF, capPerfmon), ""},
		// Kernels before 5.8 know neither CAP_BPF nor CAP_PERFMON.
		{"sys_admin only", bit(capSysAdmin), ""},
		// The unit's set: unrelated bits change nothing.
		{"unit set", bit(capBPF, capPerfmon, capSysAdmin, 19, 2), ""},
		{"unrelated only", bit(19, 2), "CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN)"},
	} {
		if got := missingCaps(tc.eff); got != tc.want {
			t.Errorf("%s: missingCaps(%#x) = %q, want %q", tc.name, tc.eff, got, tc.want)
		}
	}
}

// The mask effectiveCaps returns must be the one the kernel reports in
// /proc/self/status, whatever user the test runs as.
func TestEffectiveCapsMatchesProc(t *testing.T) {
	eff, err := effectiveCaps()
	if err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			want, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatalf("parse %q: %v", line, err)
			}
			if eff != want {
				t.Errorf("effectiveCaps = %#x, /proc/self/status CapEff = %#x", eff, want)
			}
			return
		}
	}
	t.Skip("no CapEff line in /proc/self/status")
}

func TestCheckCapsMessage(t *testing.T) {
	err := checkCaps()
	eff, _ := effectiveCaps()
	if missingCaps(eff) == "" {
		if err != nil {
			t.Fatalf("checkCaps with %#x: %v", eff, err)
		}
		return
	}
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "CAP_") {
		t.Fatalf("checkCaps without the capabilities: %v, want one line naming them", err)
	}
}
