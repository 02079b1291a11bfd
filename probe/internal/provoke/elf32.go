// SPDX-License-Identifier: Apache-2.0

package provoke

import (
	"bytes"
	"encoding/binary"
)

// I386Program is a static 32-bit x86 ELF executable that calls execve(path,
// argv, {NULL}) through int $0x80 and exits with the errno it got (0 if the
// exec succeeded, which it must not). It is built here, byte by byte, so a
// test needs no 32-bit toolchain: what runs is a real 32-bit program that
// the kernel loads in compat mode.
func I386Program(path string, argv []string) []byte {
	const (
		base   = 0x08048000
		ehSize = 52
		phSize = 32
		codeAt = ehSize + phSize
	)
	// mov eax,11; mov ebx,path; mov ecx,argv; mov edx,envp; int 0x80;
	// neg eax; mov ebx,eax; mov eax,1; int 0x80
	code := func(pathA, argvA, envA uint32) []byte {
		var b bytes.Buffer
		imm := func(op byte, v uint32) {
			b.WriteByte(op)
			binary.Write(&b, binary.LittleEndian, v)
		}
		imm(0xB8, 11)
		imm(0xBB, pathA)
		imm(0xB9, argvA)
		imm(0xBA, envA)
		b.Write([]byte{0xCD, 0x80, 0xF7, 0xD8, 0x89, 0xC3})
		imm(0xB8, 1)
		b.Write([]byte{0xCD, 0x80})
		return b.Bytes()
	}
	codeLen := len(code(0, 0, 0))
	// Data after the code: strings, then the argv and envp arrays.
	var data bytes.Buffer
	dataAt := uint32(codeAt + codeLen)
	str := func(s string) uint32 {
		a := base + dataAt + uint32(data.Len())
		data.WriteString(s)
		data.WriteByte(0)
		return a
	}
	pathA := str(path)
	ptrs := make([]uint32, len(argv))
	for i, a := range argv {
		ptrs[i] = str(a)
	}
	for data.Len()%4 != 0 {
		data.WriteByte(0)
	}
	argvA := base + dataAt + uint32(data.Len())
	for _, p := range ptrs {
		binary.Write(&data, binary.LittleEndian, p)
	}
	binary.Write(&data, binary.LittleEndian, uint32(0))
	envA := base + dataAt + uint32(data.Len())
	binary.Write(&data, binary.LittleEndian, uint32(0))

	total := uint32(codeAt + codeLen + data.Len())
	var f bytes.Buffer
	le := binary.LittleEndian
	f.Write([]byte{0x7F, 'E', 'L', 'F', 1 /* 32-bit */, 1 /* LE */, 1, 0})
	f.Write(make([]byte, 8))
	binary.Write(&f, le, uint16(2))           // ET_EXEC
	binary.Write(&f, le, uint16(3))           // EM_386
	binary.Write(&f, le, uint32(1))           // EV_CURRENT
	binary.Write(&f, le, uint32(base+codeAt)) // e_entry
	binary.Write(&f, le, uint32(ehSize))      // e_phoff
	binary.Write(&f, le, uint32(0))           // e_shoff
	binary.Write(&f, le, uint32(0))           // e_flags
	binary.Write(&f, le, uint16(ehSize))      // e_ehsize
	binary.Write(&f, le, uint16(phSize))      // e_phentsize
	binary.Write(&f, le, uint16(1))           // e_phnum
	binary.Write(&f, le, [3]uint16{40, 0, 0}) // e_shentsize, e_shnum, e_shstrndx
	binary.Write(&f, le, uint32(1))           // PT_LOAD
	binary.Write(&f, le, uint32(0))           // p_offset
	binary.Write(&f, le, uint32(base))        // p_vaddr
	binary.Write(&f, le, uint32(base))        // p_paddr
	binary.Write(&f, le, total)               // p_filesz
	binary.Write(&f, le, total)               // p_memsz
	binary.Write(&f, le, uint32(7))           // PF_R|PF_W|PF_X
	binary.Write(&f, le, uint32(0x1000))      // p_align
	f.Write(code(pathA, argvA, envA))
	f.Write(data.Bytes())
	return f.Bytes()
}
