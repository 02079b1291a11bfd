// SPDX-License-Identifier: Apache-2.0

package provoke

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// i386 syscall numbers (arch/x86/entry/syscalls/syscall_32.tbl).
const (
	ia32Execve   = 11
	ia32Execveat = 358
)

func int80(nr, a1, a2, a3, a4, a5 uintptr) uintptr

// CompatSupported: this architecture has a 32-bit syscall ABI to provoke.
const CompatSupported = true

// compatExec issues execve or execveat through `int $0x80`, with every
// pointer in memory below 4 GiB (MAP_32BIT) as a 32-bit caller's would be.
func compatExec(execveat bool, dirfd int, path string, argv, env []string, flags uint32) (syscall.Errno, error) {
	size := len(path) + 1 + 4*(len(argv)+len(env)+2)
	for _, s := range append(append([]string{}, argv...), env...) {
		size += len(s) + 1
	}
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_32BIT)
	if err != nil {
		return 0, fmt.Errorf("mmap below 4 GiB: %w", err)
	}
	// The mapping is left in place: the helper exits after reporting.
	base := uintptr(addr32(mem))
	off := 0
	put := func(s string) uint32 {
		p := uint32(base) + uint32(off)
		off += copy(mem[off:], s)
		mem[off] = 0
		off++
		return p
	}
	vec := func(ss []string) uint32 {
		ptrs := make([]uint32, len(ss))
		for i, s := range ss {
			ptrs[i] = put(s)
		}
		p := uint32(base) + uint32(off)
		for _, q := range ptrs {
			binary.LittleEndian.PutUint32(mem[off:], q)
			off += 4
		}
		binary.LittleEndian.PutUint32(mem[off:], 0)
		off += 4
		return p
	}
	pathp := put(path)
	argvp, envp := vec(argv), vec(env)
	var r uintptr
	if execveat {
		r = int80(ia32Execveat, uintptr(uint32(int32(dirfd))), uintptr(pathp), uintptr(argvp), uintptr(envp), uintptr(flags))
	} else {
		r = int80(ia32Execve, uintptr(pathp), uintptr(argvp), uintptr(envp), 0, 0)
	}
	// eax holds a negative errno; the upper half of rax is not defined.
	if ret := int32(uint32(r)); ret < 0 {
		return syscall.Errno(-ret), nil
	}
	return 0, nil
}
