// SPDX-License-Identifier: Apache-2.0

package config

import (
	"fmt"
	"os"
	"path"
	"runtime"
	"sort"
	"strconv"
	"strings"
)

// What the daemon's memory is made of, beside what the settings size.
// Measured with the default configuration on Linux 6.1 and 6.18 (amd64):
// the daemon's resident set is 33 MB idle and peaked at 40 MB folding a
// storm of 600,000 failures; the BPF maps other than the ring buffer and
// the fold table hold 7.8 MB (per-thread state 4.9 MB, the kernel's path
// copies 2.1 MB, the fold table's admission slots 0.5 MB) plus about 30 KB
// per CPU. The bound allows half as much
// again for the runtime, so a bound below the limit is not a near miss.
const (
	runtimeBytes    = 64 << 20
	bpfFixedBytes   = 16 << 20
	bpfPerCPUBytes  = 64 << 10
	foldEntryBytes  = 512      // an entry of the fold table and one of its admission table
	eventFixedBytes = 24 << 10 // paths (path, binary, interpreter, cwd, exe, stdin) and fixed fields
	argOverhead     = 32       // a Go string header and a little slack per argv/envp entry
)

// DefaultMemoryMax is the MemoryMax= of the packaged unit
// (packaging/execfaild.service): four times the bound of the default
// configuration, so a few more sinks or a larger ring buffer fit without a
// drop-in.
const DefaultMemoryMax = 512 << 20

// MemoryPart is one term of the bound: the setting that sizes it and the
// bytes it may take.
type MemoryPart struct {
	Key   string
	Bytes int64
}

// Memory is an upper bound of the memory the daemon needs with a
// configuration: BPF maps (charged to the service's memory cgroup), the
// Go runtime, and, per sink, a full delivery queue and a full dedup table.
type Memory struct {
	Parts []MemoryPart
}

// Total is the sum of the parts.
func (m Memory) Total() int64 {
	var t int64
	for _, p := range m.Parts {
		t += p.Bytes
	}
	return t
}

// Kernel is the part charged by BPF maps, which the Go runtime's memory
// limit must leave room for.
func (m Memory) Kernel() int64 {
	var t int64
	for _, p := range m.Parts {
		if strings.HasPrefix(p.Key, "probe.") || p.Key == "bpf maps" {
			t += p.Bytes
		}
	}
	return t
}

// MemoryBound computes the bound for ncpu CPUs (0: this machine's).
func (c *Config) MemoryBound(ncpu int) Memory {
	if ncpu <= 0 {
		ncpu = runtime.NumCPU()
	}
	p := c.Probe
	m := Memory{Parts: []MemoryPart{
		{"runtime", runtimeBytes},
		{"bpf maps", bpfFixedBytes + int64(ncpu)*bpfPerCPUBytes},
		{"probe.ring_buffer_bytes", p.BufferBytes(ncpu)},
	}}
	if p.FoldRepeats {
		m.Parts = append(m.Parts, MemoryPart{"probe.fold_max_keys", int64(p.FoldMaxKeys) * foldEntryBytes})
	}
	event := int64(eventFixedBytes) + int64(p.MaxArgs+p.MaxEnv)*int64(p.MaxArgLen+argOverhead)
	for _, e := range c.Sinks {
		com := e.Config.Common()
		prefix := fmt.Sprintf("sink.%s[%d].", e.Kind, e.Index)
		m.Parts = append(m.Parts,
			MemoryPart{prefix + "queue_size", int64(com.QueueSize) * event},
			MemoryPart{prefix + "dedup.max_bytes", com.Dedup.MaxBytes})
	}
	return m
}

// CheckMemory fails, in one line naming the largest settings, when the
// bound exceeds limit (bytes; 0 means no limit). Loading the BPF maps or a
// burst of notifications would otherwise get the daemon killed by the
// kernel's OOM killer at a moment nobody chose.
func (c *Config) CheckMemory(limit int64, ncpu int) error {
	m := c.MemoryBound(ncpu)
	if limit <= 0 || m.Total() <= limit {
		return nil
	}
	parts := append([]MemoryPart(nil), m.Parts...)
	sort.SliceStable(parts, func(i, j int) bool { return parts[i].Bytes > parts[j].Bytes })
	var big []string
	for _, p := range parts {
		if p.Key == "runtime" || p.Key == "bpf maps" {
			continue
		}
		big = append(big, p.Key+" "+FormatBytes(p.Bytes))
		if len(big) == 3 {
			break
		}
	}
	file := c.File
	if file == "" {
		file = "built-in defaults"
	}
	return fmt.Errorf("%s: the configuration may need up to %s of memory (largest: %s) but the service may use %s (MemoryMax=): lower those settings or raise the limit with `systemctl edit execfaild`",
		file, FormatBytes(m.Total()), strings.Join(big, ", "), FormatBytes(limit))
}

// FormatBytes prints a size in the largest binary unit that keeps one
// decimal: "512 MiB", "1.5 GiB".
func FormatBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	s := strconv.FormatFloat(f, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	return s + " " + units[i]
}

// CgroupMemoryLimit returns the tightest memory.max on the path from this
// process's cgroup (v2) to the root, 0 when there is none or cgroup v2 is
// not mounted at sysfs.
func CgroupMemoryLimit(procSelfCgroup, cgroupRoot string) int64 {
	data, err := os.ReadFile(procSelfCgroup)
	if err != nil {
		return 0
	}
	var rel string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "0::") {
			rel = strings.TrimPrefix(line, "0::")
		}
	}
	if rel == "" {
		return 0
	}
	var limit int64
	for dir := path.Clean("/" + rel); ; dir = path.Dir(dir) {
		if b, err := os.ReadFile(path.Join(cgroupRoot, dir, "memory.max")); err == nil {
			v := strings.TrimSpace(string(b))
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 && (limit == 0 || n < limit) {
				limit = n
			}
		}
		if dir == "/" {
			return limit
		}
	}
}
