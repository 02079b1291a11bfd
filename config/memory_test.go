// SPDX-License-Identifier: Apache-2.0

package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMemoryBoundDefaultsFitTheUnit(t *testing.T) {
	c, err := Parse("execfaild.toml", []byte("[[sink.journal]]\nname = \"j\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ncpu := range []int{1, 2, 64, 256} {
		m := c.MemoryBound(ncpu)
		// The packaged MemoryMax= leaves room for more than the defaults.
		if m.Total()*2 > DefaultMemoryMax {
			t.Errorf("%d CPUs: default bound %s is more than half the unit's %s", ncpu, FormatBytes(m.Total()), FormatBytes(DefaultMemoryMax))
		}
		if err := c.CheckMemory(DefaultMemoryMax, ncpu); err != nil {
			t.Errorf("%d CPUs: defaults refused: %v", ncpu, err)
		}
	}
	unit, err := os.ReadFile("../packaging/execfaild.service")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "\nMemoryMax=512M\n") || DefaultMemoryMax != 512<<20 {
		t.Errorf("packaging/execfaild.service's MemoryMax= and DefaultMemoryMax (%d) disagree", DefaultMemoryMax)
	}
}

func TestMemoryBoundGrowsWithSettings(t *testing.T) {
	base, err := Parse("a.toml", []byte("[[sink.journal]]\nname = \"j\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ extra, key string }{
		{"[probe]\nring_buffer_bytes = 67108864\n", "probe.ring_buffer_bytes"},
		{"[probe]\nfold_max_keys = 65536\n", "probe.fold_max_keys"},
		{"[probe]\nmax_args = 64\nmax_arg_len = 4094\n", "sink.journal[0].queue_size"},
		{"[dedup]\nmax_bytes = 268435456\n", "sink.journal[0].dedup.max_bytes"},
	} {
		c, err := Parse("b.toml", []byte(tc.extra+"[[sink.journal]]\nname = \"j\"\n"))
		if err != nil {
			t.Fatalf("%q: %v", tc.extra, err)
		}
		if part(c.MemoryBound(2), tc.key) <= part(base.MemoryBound(2), tc.key) {
			t.Errorf("%q: %s did not grow: %d", tc.extra, tc.key, part(c.MemoryBound(2), tc.key))
		}
	}
	// Every sink brings its own queue and dedup table.
	two, err := Parse("c.toml", []byte("[[sink.journal]]\nname = \"j\"\n[[sink.stdout]]\nname = \"s\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if two.MemoryBound(2).Total() <= base.MemoryBound(2).Total() {
		t.Errorf("a second sink did not raise the bound")
	}
}

func part(m Memory, key string) int64 {
	for _, p := range m.Parts {
		if p.Key == key {
			return p.Bytes
		}
	}
	return -1
}

func TestCheckMemoryRefusesWhatTheLimitCannotHold(t *testing.T) {
	c, err := Parse("/etc/execfaild.toml", []byte("[probe]\nring_buffer_bytes = 1073741824\n[[sink.journal]]\nname = \"j\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = c.CheckMemory(DefaultMemoryMax, 2)
	if err == nil {
		t.Fatal("a 1 GiB ring buffer under a 512 MiB limit was accepted")
	}
	msg := err.Error()
	for _, want := range []string{"/etc/execfaild.toml: ", "largest: probe.ring_buffer_bytes 1 GiB", "the service may use 512 MiB (MemoryMax=)", "systemctl edit execfaild"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	if err := c.CheckMemory(0, 2); err != nil {
		t.Errorf("no limit, still refused: %v", err)
	}
	if err := c.CheckMemory(4<<30, 2); err != nil {
		t.Errorf("a 4 GiB limit refused a ~1.2 GiB bound: %v", err)
	}
}

func TestCgroupMemoryLimitTakesTheTightestAncestor(t *testing.T) {
	root := t.TempDir()
	write := func(rel, data string) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("sys/system.slice/memory.max", "268435456\n")
	write("sys/system.slice/execfaild.service/memory.max", "536870912\n")
	write("self-cgroup", "0::/system.slice/execfaild.service\n")
	if got := CgroupMemoryLimit(filepath.Join(root, "self-cgroup"), filepath.Join(root, "sys")); got != 256<<20 {
		t.Errorf("limit %d, want the slice's 256 MiB", got)
	}
	write("sys/system.slice/memory.max", "max\n")
	if got := CgroupMemoryLimit(filepath.Join(root, "self-cgroup"), filepath.Join(root, "sys")); got != 512<<20 {
		t.Errorf("limit %d, want the service's 512 MiB", got)
	}
	// cgroup v1 only (no "0::" line): no limit known.
	write("v1-cgroup", "4:memory:/x\n1:cpu:/\n")
	if got := CgroupMemoryLimit(filepath.Join(root, "v1-cgroup"), filepath.Join(root, "sys")); got != 0 {
		t.Errorf("cgroup v1: limit %d, want 0", got)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{512: "512 B", 1536: "1.5 KiB", 512 << 20: "512 MiB", 1 << 30: "1 GiB", 3 << 29: "1.5 GiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
