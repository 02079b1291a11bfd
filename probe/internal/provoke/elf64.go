// SPDX-License-Identifier: Apache-2.0

package provoke

import (
	"bytes"
	"encoding/binary"
	"runtime"
)

// ELF machine numbers (e_machine) of the architectures provoked on.
const (
	emX86_64  = 62
	emAArch64 = 183
)

// machine is this architecture's ELF machine and the name the musl
// loader for it has; foreign is another one, which this kernel does not
// run, with the name a diagnosis gives it.
func machine() (native uint16, muslLoader string, foreign uint16, foreignName string) {
	if runtime.GOARCH == "arm64" {
		return emAArch64, "/lib/ld-musl-aarch64.so.1", emX86_64, "x86-64"
	}
	return emX86_64, "/lib/ld-musl-x86_64.so.1", emAArch64, "aarch64"
}

// elf64 writes a 64-bit little-endian ELF header for machine with the
// given program headers (type, offset, size each) following it; payload
// is appended after the headers.
func elf64(machine uint16, phdrs [][3]uint64, payload []byte) []byte {
	const ehSize, phSize = 64, 56
	var f bytes.Buffer
	le := binary.LittleEndian
	f.Write([]byte{0x7F, 'E', 'L', 'F', 2 /* 64-bit */, 1 /* LE */, 1, 0})
	f.Write(make([]byte, 8))
	binary.Write(&f, le, uint16(2))           // ET_EXEC
	binary.Write(&f, le, machine)             // e_machine
	binary.Write(&f, le, uint32(1))           // EV_CURRENT
	binary.Write(&f, le, uint64(0x400000))    // e_entry
	binary.Write(&f, le, uint64(ehSize))      // e_phoff
	binary.Write(&f, le, uint64(0))           // e_shoff
	binary.Write(&f, le, uint32(0))           // e_flags
	binary.Write(&f, le, uint16(ehSize))      // e_ehsize
	binary.Write(&f, le, uint16(phSize))      // e_phentsize
	binary.Write(&f, le, uint16(len(phdrs)))  // e_phnum
	binary.Write(&f, le, [3]uint16{64, 0, 0}) // e_shentsize, e_shnum, e_shstrndx
	for _, p := range phdrs {
		binary.Write(&f, le, uint32(p[0])) // p_type
		binary.Write(&f, le, uint32(4))    // PF_R
		binary.Write(&f, le, p[1])         // p_offset
		binary.Write(&f, le, uint64(0))    // p_vaddr
		binary.Write(&f, le, uint64(0))    // p_paddr
		binary.Write(&f, le, p[2])         // p_filesz
		binary.Write(&f, le, p[2])         // p_memsz
		binary.Write(&f, le, uint64(1))    // p_align
	}
	f.Write(payload)
	return f.Bytes()
}

// MissingLoaderProgram is an ELF program for this machine whose PT_INTERP
// names loader, as a program linked against musl names
// /lib/ld-musl-x86_64.so.1. The kernel's ELF loader opens the loader
// before anything else of the program is used, so when the loader does
// not exist exec fails with ENOENT and nothing else need be valid.
func MissingLoaderProgram(loader string) []byte {
	native, _, _, _ := machine()
	const ptInterp = 3
	interp := append([]byte(loader), 0)
	return elf64(native, [][3]uint64{{ptInterp, 64 + 56, uint64(len(interp))}}, interp)
}

// ForeignProgram is the header of an ELF program for a machine this
// kernel does not run (aarch64 on x86_64, x86-64 on arm64): the ELF
// loader refuses it before reading anything else.
func ForeignProgram() []byte {
	_, _, foreign, _ := machine()
	return elf64(foreign, nil, nil)
}
