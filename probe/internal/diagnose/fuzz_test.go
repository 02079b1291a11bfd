// SPDX-License-Identifier: Apache-2.0

package diagnose

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// FuzzBadFormat: the diagnosis of ENOEXEC for a program (or a script's
// interpreter) with any first bytes names a cause and a sentence, and
// reads the ELF header only from an ELF file long enough to hold it.
func FuzzBadFormat(f *testing.F) {
	elf64 := make([]byte, 64)
	copy(elf64, elf.ELFMAG)
	elf64[elf.EI_CLASS], elf64[elf.EI_DATA] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB)
	binary.LittleEndian.PutUint16(elf64[16:], uint16(elf.ET_REL))
	binary.LittleEndian.PutUint16(elf64[18:], uint16(elf.EM_AARCH64))
	for _, head := range [][]byte{
		elf64, elf64[:19], elf64[:20], []byte("\x7fELF\x01\x02"), []byte("#!/bin/sh\r\n"), []byte("#!\n"),
		[]byte("MZ\x90\x00"), []byte("<!DOCTYPE html>"), []byte("echo hi\n"), []byte("\xef\xbb\xbf\xff\xfe"), {},
		[]byte(strings.Repeat("é", 30)),
	} {
		f.Add(head, true, "/bin/sh", []byte("\x7fELF\x02\x02\x01"))
	}
	f.Fuzz(func(t *testing.T, head []byte, kernel bool, interp string, interpHead []byte) {
		ev := &Evidence{Errno: unix.ENOEXEC, Arch: ArchOf("amd64"), Interp: interp,
			Program:     File{Path: "/srv/prog", Head: head, HeadKernel: kernel},
			Interpreter: &File{Path: interp, Head: interpHead}}
		r := Diagnose(ev)
		if r.Cause == "" || r.Text == "" {
			t.Fatalf("no cause or sentence for %q: %+v", head, r)
		}
		for _, in := range [][]byte{head, interpHead} {
			h, ok := parseELF(in)
			if ok != (len(in) >= 20 && bytes.HasPrefix(in, []byte(elf.ELFMAG))) {
				t.Fatalf("parseELF(%q) ok = %v", in, ok)
			}
			if ok && (h.Class != elf.Class(in[elf.EI_CLASS]) || h.Data != elf.Data(in[elf.EI_DATA])) {
				t.Fatalf("parseELF(%q) = %+v", in, h)
			}
		}
		// The file's bytes are quoted into the sentence: only the paths,
		// which sinks escape, may bring invalid UTF-8.
		if utf8.ValidString(interp) && !utf8.ValidString(r.Text) {
			t.Fatalf("sentence for %q is not UTF-8: %q", head, r.Text)
		}
	})
}
