// SPDX-License-Identifier: Apache-2.0

// Package privs gives up, once the probe is attached, the capabilities that
// only attaching needed. The daemon parses strings chosen by any local user
// for the rest of its life; after this it can no longer load BPF programs,
// open perf events or administer the system, whatever it is made to do.
package privs

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Capability numbers (linux/capability.h).
const (
	CapDacReadSearch = 2
	CapSysPtrace     = 19
	CapSysAdmin      = 21
	CapPerfmon       = 38
	CapBPF           = 39
)

// Runtime is what the daemon needs after attaching: reading other users'
// /proc/<pid> (cwd, root, descriptors) and files they cannot hide from the
// operator (a root-only configuration or secret file on reload).
const Runtime = 1<<CapSysPtrace | 1<<CapDacReadSearch

var names = map[uint]string{
	CapDacReadSearch: "CAP_DAC_READ_SEARCH",
	CapSysPtrace:     "CAP_SYS_PTRACE",
	CapSysAdmin:      "CAP_SYS_ADMIN",
	CapPerfmon:       "CAP_PERFMON",
	CapBPF:           "CAP_BPF",
}

// Names lists a capability mask for a log line.
func Names(mask uint64) string {
	var out []string
	for c := uint(0); c < 64; c++ {
		if mask&(1<<c) == 0 {
			continue
		}
		if n, ok := names[c]; ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprintf("cap%d", c))
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ",")
}

type sets struct{ effective, permitted, inheritable uint64 }

func get() (sets, *unix.CapUserHeader, error) {
	hdr := &unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var d [2]unix.CapUserData
	if err := unix.Capget(hdr, &d[0]); err != nil {
		return sets{}, nil, fmt.Errorf("read capabilities: %w", err)
	}
	join := func(lo, hi uint32) uint64 { return uint64(hi)<<32 | uint64(lo) }
	return sets{
		effective:   join(d[0].Effective, d[1].Effective),
		permitted:   join(d[0].Permitted, d[1].Permitted),
		inheritable: join(d[0].Inheritable, d[1].Inheritable),
	}, hdr, nil
}

func data(s sets) [2]unix.CapUserData {
	return [2]unix.CapUserData{
		{Effective: uint32(s.effective), Permitted: uint32(s.permitted), Inheritable: uint32(s.inheritable)},
		{Effective: uint32(s.effective >> 32), Permitted: uint32(s.permitted >> 32), Inheritable: uint32(s.inheritable >> 32)},
	}
}

// Current returns the calling thread's effective set.
func Current() (uint64, error) {
	s, _, err := get()
	return s.effective, err
}

// Without runs f on one thread whose effective set lacks drop, and puts the
// set back afterwards: a trial of what would still work after Drop. Only
// that thread is affected (capabilities are per thread).
func Without(drop uint64, f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s, hdr, err := get()
	if err != nil {
		return err
	}
	trial := s
	trial.effective &^= drop
	d := data(trial)
	if err := unix.Capset(hdr, &d[0]); err != nil {
		return fmt.Errorf("lower capabilities for a trial: %w", err)
	}
	ferr := f()
	d = data(s)
	if err := unix.Capset(hdr, &d[0]); err != nil {
		// The thread cannot go back to the pool with a different set.
		panic(fmt.Sprintf("restore capabilities after a trial: %v", err))
	}
	return ferr
}

// Drop keeps only keep (of what the process has) in every thread's
// effective and permitted sets, and clears the inheritable and ambient
// sets, so neither this process nor anything it runs can regain the rest.
// It needs a binary without cgo (it changes every thread of the process).
func Drop(keep uint64) (kept uint64, err error) {
	s, hdr, err := get()
	if err != nil {
		return 0, err
	}
	if _, _, errno := syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0); errno != 0 {
		// EINVAL: a kernel without ambient capabilities has none to clear.
		if !errors.Is(errno, unix.EINVAL) {
			return 0, fmt.Errorf("clear ambient capabilities: %w", errno)
		}
	}
	s.permitted &= keep
	s.effective &= s.permitted
	s.inheritable = 0
	d := data(s)
	if _, _, errno := syscall.AllThreadsSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(hdr)), uintptr(unsafe.Pointer(&d[0])), 0); errno != 0 {
		return 0, fmt.Errorf("drop capabilities: %w", errno)
	}
	return s.effective, nil
}
