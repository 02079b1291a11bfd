// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// memory is a process's resident memory in kB, split into the BPF maps it
// has mapped - kernel memory: the ring buffer (its data pages mapped twice,
// so a 4 MiB ring is 8 MiB resident) and mmapable arrays - and the rest,
// which is the process's own (Go heap, stacks, binary, libraries).
type memory struct {
	total, bpfMaps uint64
}

func (m memory) rest() uint64 { return m.total - m.bpfMaps }

// String reads as total (BPF maps + the rest), in MB.
func (m memory) String() string {
	return fmt.Sprintf("%.1f (BPF maps %.1f + rest %.1f)", mb(m.total), mb(m.bpfMaps), mb(m.rest()))
}

func mb(kb uint64) float64 { return float64(kb) / 1024 }

// bpfMapping tells whether a mapping's name is a BPF map's: the kernel
// names the file behind a map's fd anon_inode:bpf-map (ring buffers
// included); later kernels may name kinds apart (bpf-ringbuf, bpf-arena).
func bpfMapping(name string) bool {
	return strings.HasPrefix(name, "anon_inode:bpf-") && name != "anon_inode:bpf-prog"
}

// readMemory reads /proc/<pid>/smaps.
func readMemory(pid int) (memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return memory{}, fmt.Errorf("daemon memory: %w", err)
	}
	defer f.Close()
	m, err := parseSmaps(f)
	if err != nil {
		return memory{}, fmt.Errorf("daemon memory: /proc/%d/smaps: %w", pid, err)
	}
	return m, nil
}

// parseSmaps sums the Rss of every mapping in an smaps listing, and apart
// that of the BPF maps'.
func parseSmaps(r io.Reader) (memory, error) {
	var m memory
	inBPF := false
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if !strings.HasSuffix(f[0], ":") {
			// A mapping's header: range perms offset dev inode [name].
			if len(f) < 5 || !strings.Contains(f[0], "-") {
				return memory{}, fmt.Errorf("line %d: neither a mapping nor a field: %q", line, sc.Text())
			}
			inBPF = len(f) > 5 && bpfMapping(f[5])
			continue
		}
		if f[0] != "Rss:" {
			continue
		}
		if len(f) != 3 || f[2] != "kB" {
			return memory{}, fmt.Errorf("line %d: Rss not in kB: %q", line, sc.Text())
		}
		kb, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return memory{}, fmt.Errorf("line %d: %w", line, err)
		}
		m.total += kb
		if inBPF {
			m.bpfMaps += kb
		}
	}
	return m, sc.Err()
}
