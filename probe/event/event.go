// SPDX-License-Identifier: Apache-2.0

// Package event defines the one schema every part of execfaild speaks: the
// probe produces it, the notification pipeline filters, aggregates and
// renders it, and every sink encodes it. JSON names follow the
// process_execute_failed event so existing consumers recognise them.
//
// Missing means absent: every field whose zero value could be real (fd 0,
// inode 0, uid 0) is a pointer or carries an explicit presence flag, and is
// omitted from JSON when the kernel or userspace could not tell.
package event

import (
	"fmt"
	"path"
	"time"

	"golang.org/x/sys/unix"
)

// Syscall names how the failed exec was started.
const (
	SyscallExecve   = "execve"
	SyscallExecveat = "execveat"
	SyscallKernel   = "kernel" // kernel-initiated exec (usermode helper)
)

// ABIIA32 is Event.ABI for a 32-bit (compat) syscall on x86_64.
const ABIIA32 = "ia32"

// Stage tells how far exec got before it failed, as far as the hooks tell.
const (
	StageUnknown = ""         // tracepoint-only mode without userspace evidence
	StagePreOpen = "pre_open" // failed before a binary was opened (ENOENT, E2BIG, …)
	StageOpen    = "open"     // the binary was opened but the permission/LSM check refused it
	StageCreds   = "creds"    // credential or LSM check for the new image failed
	StageLoader  = "loader"   // a binary format handler (ELF, script, misc) refused or failed
)

// Source tells who resolved a group of fields: the kernel hooks, or
// userspace after the fact (tracepoint-only mode), which is racy.
const (
	SourceKernel    = "kernel"
	SourceUserspace = "userspace"
	// SourceCaller: read from the caller's memory at the syscall exit, by
	// the kernel probe but after the fact (a sibling thread could have
	// rewritten it since the kernel used it).
	SourceCaller = "caller"
)

// Binary is the file exec opened. Absent when no file was opened.
type Binary struct {
	Path string `json:"path"`
	// DeviceID is in the userspace st_dev encoding (glibc makedev of the
	// kernel's MAJOR/MINOR), so it compares equal to stat(2)'s st_dev.
	DeviceID    uint64 `json:"device_id"`
	InodeNumber uint64 `json:"inode_number"`
	// Ctime is the inode change time in nanoseconds since the epoch.
	Ctime     uint64 `json:"ctime"`
	InodeMode uint32 `json:"inode_mode"`
	// Source is "kernel" or "userspace" (stat through /proc/<pid>/root).
	Source string `json:"source"`
}

// Process is the caller of the failed exec.
type Process struct {
	PID      uint32  `json:"pid"`
	TID      uint32  `json:"tid"`
	PPID     uint32  `json:"ppid"`
	UID      uint32  `json:"uid"`
	GID      uint32  `json:"gid"`
	EUID     uint32  `json:"euid"`
	LoginUID *uint32 `json:"loginuid,omitempty"` // absent when unset (4294967295)
	Comm     string  `json:"comm"`
	Exe      string  `json:"exe,omitempty"`
	Cwd      string  `json:"cwd,omitempty"`
	CgroupID uint64  `json:"cgroup_id,omitempty"`
	Cgroup   string  `json:"cgroup,omitempty"`
	// Unit is the system manager's unit; UserUnit is the unit of a user's
	// own manager when Unit is user@UID.service (the user names it).
	Unit     string `json:"unit,omitempty"`
	UserUnit string `json:"user_unit,omitempty"`
	// ContainerID is set only when the cgroup path makes one evident.
	ContainerID string `json:"container_id,omitempty"`
}

// Parent is the caller's parent process.
type Parent struct {
	PID  uint32 `json:"pid"`
	Comm string `json:"comm,omitempty"`
	Exe  string `json:"exe,omitempty"`
}

// Event is one failed exec, or — when Count > 1 — an aggregate of several
// that the pipeline collapsed (dedup digest).
type Event struct {
	Time time.Time `json:"time"`
	Host string    `json:"host"`

	ReturnValue int32  `json:"return_value"` // negative errno as the kernel returned it
	Error       string `json:"error"`        // "ENOENT"
	ErrorText   string `json:"error_text"`   // "no such file or directory"

	// Cause is the diagnosis (one of the Cause* codes) and CauseText one
	// plain sentence naming the offending path or value and the fix.
	// CauseInferred is true when the evidence behind it was gathered in
	// userspace after the fact (racy), not by the kernel hooks.
	Cause         string `json:"cause,omitempty"`
	CauseText     string `json:"cause_text,omitempty"`
	CauseInferred bool   `json:"cause_inferred,omitempty"`

	Syscall string `json:"syscall"`
	// ABI is "ia32" for a 32-bit (compat) syscall on x86_64 - an `int $0x80`
	// or a 32-bit program - and absent for the native ABI.
	ABI string `json:"abi,omitempty"`
	// Dirfd and Flags are set for execveat only. AT_FDCWD is -100.
	Dirfd *int32  `json:"dirfd,omitempty"`
	Flags *uint32 `json:"flags,omitempty"`
	Stage string  `json:"stage,omitempty"`

	Path string `json:"path"` // as the caller gave it; may be relative or empty
	// PathTruncated: the path was longer than the kernel keeps (4095 bytes),
	// or could not be read at all (then Path is empty).
	PathTruncated bool `json:"path_truncated,omitempty"`
	// PathSource is "kernel" when Path is the kernel's own copy (taken when
	// exec opened the binary, fentry and kprobe modes), "caller" when it was
	// read back from the caller's memory at the syscall exit, where a
	// sibling thread could have rewritten it.
	PathSource string `json:"path_source,omitempty"`

	Binary          *Binary `json:"binary,omitempty"`
	InterpreterPath string  `json:"interpreter_path,omitempty"`
	// InterpreterSource is "kernel" or "userspace" when InterpreterPath is set.
	InterpreterSource string `json:"interpreter_source,omitempty"`

	// StdinType describes the caller's fd 0: chr, fifo, sock, reg, dir,
	// blk, lnk, anon (anonymous inode), or "closed". StdinMode is the raw
	// i_mode; StdinPath the path of the open file, when it has one.
	StdinType     string  `json:"stdin_type,omitempty"`
	StdinMode     *uint32 `json:"stdin_mode,omitempty"`
	StdinPath     string  `json:"stdin_path,omitempty"`
	KernelInvoked bool    `json:"kernel_invoked"`

	Arguments          []string `json:"arguments"`
	ArgumentsTruncated bool     `json:"arguments_truncated,omitempty"`
	// ArgumentsRedacted is true when the pipeline replaced secrets in
	// Arguments (a password flag's value, URL credentials) with <redacted>.
	ArgumentsRedacted    bool     `json:"arguments_redacted,omitempty"`
	Environment          []string `json:"environment,omitempty"`
	EnvironmentTruncated bool     `json:"environment_truncated,omitempty"`
	// EnvironmentRedacted is true when values were replaced (NAME=<redacted>).
	EnvironmentRedacted bool `json:"environment_redacted,omitempty"`

	Process Process `json:"process"`
	Parent  *Parent `json:"parent,omitempty"`

	// Labels are the operator's static fleet labels (site, role, …),
	// stamped on every event so that every sink carries them.
	Labels map[string]string `json:"labels,omitempty"`

	// Test marks the synthetic failure `execfaild test-sinks` sends: every
	// sink says it is a test, so it cannot page anyone as a real one.
	Test bool `json:"test,omitempty"`

	// Aggregation, set by the pipeline. Count is how many failures this
	// notification stands for (1 for a single one). Digest is true when the
	// notification summarises repeats held back after the first was sent.
	Digest    bool       `json:"digest,omitempty"`
	Count     uint64     `json:"count,omitempty"`
	FirstSeen *time.Time `json:"first_seen,omitempty"`
	LastSeen  *time.Time `json:"last_seen,omitempty"`
	// PIDs lists some of the callers folded into a digest (bounded).
	PIDs []uint32 `json:"pids,omitempty"`
	// Tried lists the directories an execvp-style PATH search tried
	// before giving up (one notification instead of one per directory).
	Tried []string `json:"path_search_tried,omitempty"`
}

// Success records that a thread which recently failed with ENOENT then
// exec'd successfully (the end of an execvp-style PATH search). The probe
// reports it only for threads with a pending ENOENT, so successes stay cheap.
type Success struct {
	Time time.Time
	PID  uint32
	TID  uint32
	// Name is the program the thread runs after the exec, as the kernel
	// named the thread from its file name (comm: at most 15 bytes, cut),
	// read by the probe when the exec succeeded. Only a search for that
	// name ends with this success.
	Name string
}

// SetErrno fills ReturnValue, Error and ErrorText from a negative errno.
func (e *Event) SetErrno(ret int32) {
	e.ReturnValue = ret
	errno := unix.Errno(-ret)
	e.Error = unix.ErrnoName(errno)
	if e.Error == "" {
		e.Error = fmt.Sprintf("E%d", -ret)
	}
	e.ErrorText = errno.Error()
}

// ResolvedPath is the best display path of the program that failed: the
// binary exec opened, else the caller's path resolved against its cwd.
func (e *Event) ResolvedPath() string {
	if e.Binary != nil && e.Binary.Path != "" {
		return e.Binary.Path
	}
	if e.Path != "" && !path.IsAbs(e.Path) && e.Process.Cwd != "" && (e.Dirfd == nil || *e.Dirfd == unix.AT_FDCWD) {
		return path.Join(e.Process.Cwd, e.Path)
	}
	return e.Path
}
