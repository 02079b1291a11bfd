// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"strings"
	"testing"
)

// testdata/smaps is /proc/<pid>/smaps of `execfaild run` (tracepoint mode,
// 4 MiB ring buffer) once started, captured on the bench's host. Its sums,
// taken apart with awk:
//
//	awk '/^[0-9a-f]+-/ {bpf = ($6 ~ /^anon_inode:bpf-/ && $6 != "anon_inode:bpf-prog")}
//	     /^Rss:/ {t += $2; if (bpf) b += $2} END {print t, b}' testdata/smaps
//
// It has 4 anon_inode:bpf-map mappings: the ring buffer's data (8196 kB:
// 4 MiB twice and the producer page), its consumer page, and the programs'
// global data (two one-page mmapable arrays).
const capturedTotal, capturedBPF = 25424, 8208

func TestParseSmapsCaptured(t *testing.T) {
	f, err := os.Open("testdata/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := parseSmaps(f)
	if err != nil {
		t.Fatal(err)
	}
	if m.total != capturedTotal || m.bpfMaps != capturedBPF {
		t.Errorf("total %d kB, BPF maps %d kB; want %d, %d", m.total, m.bpfMaps, capturedTotal, capturedBPF)
	}
	// The 4 MiB ring's data pages are mapped twice: at least 8 MiB.
	if m.bpfMaps < 8192 {
		t.Errorf("BPF maps %d kB: the ring buffer is not among them", m.bpfMaps)
	}
}

// Names with spaces, a deleted file and a program's fd (not a map) are
// read as what they are; only bpf- maps count apart.
func TestParseSmapsNames(t *testing.T) {
	const smaps = `00400000-00800000 r-xp 00000000 08:01 123 /usr/bin/exec faild (deleted)
Size:               4096 kB
Rss:                1000 kB
VmFlags: rd ex mr mw me
7f0000000000-7f0000801000 r--s 00001000 00:10 55 anon_inode:bpf-map
Rss:                8196 kB
7f0000900000-7f0000901000 rw-s 00000000 00:10 56 anon_inode:bpf-ringbuf
Rss:                   4 kB
7f0000a00000-7f0000a01000 r--s 00000000 00:10 57 anon_inode:bpf-prog
Rss:                   4 kB
7f0000b00000-7f0000b10000 rw-p 00000000 00:00 0
Rss:                  64 kB
`
	m, err := parseSmaps(strings.NewReader(smaps))
	if err != nil {
		t.Fatal(err)
	}
	if m.total != 1000+8196+4+4+64 || m.bpfMaps != 8196+4 {
		t.Errorf("got total %d, BPF maps %d", m.total, m.bpfMaps)
	}
	if got, want := m.String(), "9.1 (BPF maps 8.0 + rest 1.0)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestParseSmapsRejectsWhatItCannotRead(t *testing.T) {
	for _, bad := range []string{
		"00400000-00800000 r-xp 00000000 08:01 123 /bin/x\nRss: 12 MB\n",
		"00400000-00800000 r-xp 00000000 08:01 123 /bin/x\nRss: many kB\n",
		"not smaps at all\n",
	} {
		if _, err := parseSmaps(strings.NewReader(bad)); err == nil || !strings.HasPrefix(err.Error(), "line ") {
			t.Errorf("parseSmaps(%q): err %v, want one naming the line", bad, err)
		}
	}
}
