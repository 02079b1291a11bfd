// SPDX-License-Identifier: Apache-2.0

package provoke

import (
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// userfaultfd ioctls (linux/userfaultfd.h): _IOWR(0xAA, nr, size).
const (
	uffdioAPI       = 0xC018AA3F
	uffdioRegister  = 0xC020AA00
	uffdioCopy      = 0xC028AA03
	uffdAPI         = 0xAA
	uffdEventFault  = 0x12
	uffdModeMissing = 1
)

// stalledString is a C string on a page the kernel must fault in through
// userfaultfd: the first read of it (by exec copying argv) blocks until
// onFault has run, which lets a test change memory while the caller is
// inside exec, deterministically.
type stalledString struct {
	fd   int
	page []byte
	data []byte // what the page holds once the fault is resolved
}

func newStalledString(s string) (*stalledString, error) {
	fd, _, errno := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC, 0, 0)
	if errno != 0 {
		return nil, fmt.Errorf("userfaultfd: %w", errno)
	}
	api := [3]uint64{uffdAPI, 0, 0}
	if err := ioctlPtr(int(fd), uffdioAPI, unsafe.Pointer(&api)); err != nil {
		unix.Close(int(fd))
		return nil, fmt.Errorf("UFFDIO_API: %w", err)
	}
	size := os.Getpagesize()
	if len(s)+1 > size {
		return nil, fmt.Errorf("stalled string longer than a page")
	}
	page, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		unix.Close(int(fd))
		return nil, fmt.Errorf("mmap: %w", err)
	}
	reg := [4]uint64{uint64(uintptr(unsafe.Pointer(&page[0]))), uint64(size), uffdModeMissing, 0}
	if err := ioctlPtr(int(fd), uffdioRegister, unsafe.Pointer(&reg)); err != nil {
		unix.Close(int(fd))
		return nil, fmt.Errorf("UFFDIO_REGISTER: %w", err)
	}
	data := make([]byte, size)
	copy(data, s)
	return &stalledString{fd: int(fd), page: page, data: data}, nil
}

// addr is the string's address; the page must not be touched from Go.
func (u *stalledString) addr() uintptr { return uintptr(unsafe.Pointer(&u.page[0])) }

// serve waits, on its own thread, for the one fault, runs onFault, then
// fills the page so the faulting read goes on.
func (u *stalledString) serve(onFault func()) <-chan error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		msg := make([]byte, 32)
		for {
			n, err := unix.Read(u.fd, msg)
			if err == unix.EINTR {
				continue
			}
			if err != nil || n != len(msg) {
				done <- fmt.Errorf("read userfaultfd: %v (%d bytes)", err, n)
				return
			}
			break
		}
		if msg[0] != uffdEventFault {
			done <- fmt.Errorf("userfaultfd event %#x, want a page fault", msg[0])
			return
		}
		onFault()
		cp := [5]uint64{uint64(u.addr()), uint64(uintptr(unsafe.Pointer(&u.data[0]))), uint64(len(u.data)), 0, 0}
		done <- ioctlPtr(u.fd, uffdioCopy, unsafe.Pointer(&cp))
		runtime.KeepAlive(u.data)
	}()
	return done
}

func ioctlPtr(fd int, req uint, arg unsafe.Pointer) error {
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg)); errno != 0 {
		return errno
	}
	return nil
}
