// SPDX-License-Identifier: Apache-2.0

// Package diagnose says why an exec failed: from the evidence about one
// failure - what the kernel hooks saw inside exec and what userspace read
// afterwards - it picks a cause code (event.Cause*) and writes one plain
// sentence naming the offending path or value and the fix.
//
// Nothing is read here: the caller gathers the evidence, so the rules are a
// pure function with a table test. A diagnosis never claims more than its
// evidence: what was not seen is not named, and a cause that rests on
// userspace reads made after the fact is marked inferred.
package diagnose

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/execfaild/execfaild/probe/event"
)

// File is what is known about one file exec dealt with: the program the
// caller named, or the interpreter it names.
type File struct {
	Path string // as the caller would name it
	// Head is the file's first bytes (nil: not read). HeadKernel: the
	// kernel's own copy, taken when exec handed the file to the loaders.
	Head       []byte
	HeadKernel bool
	// Stat: the fields below are known (userspace stat, after the fact).
	Stat     bool
	Missing  bool // stat said it does not exist
	Mode     uint32
	UID, GID uint32
	// Noexec: the file's mount forbids exec; NoexecMount names the mount
	// point when the caller's mount table tells it.
	Noexec      bool
	NoexecMount string
	// Interp is the interpreter the file names (#! line or ELF PT_INTERP);
	// InterpMissing: a stat found no such file.
	Interp        string
	InterpMissing bool
}

// Creds are the caller's file-system credentials, as permission checks
// see them. Known is false when only the event's ids were available (the
// caller is gone): supplementary groups and capabilities are then unknown.
type Creds struct {
	Known       bool
	UID, GID    uint32
	Groups      []uint32
	DACOverride bool // CAP_DAC_OVERRIDE: any execute bit suffices
	DACSearch   bool // CAP_DAC_READ_SEARCH (or override): every directory is searchable
}

// Dir is a directory of the path and its permissions.
type Dir struct {
	Path     string
	Mode     uint32
	UID, GID uint32
}

// Evidence is everything gathered about one failure.
type Evidence struct {
	Errno unix.Errno
	// Program is the file the caller named; Interpreter the one it names,
	// when that was looked at.
	Program     File
	Interpreter *File
	// Interp is the interpreter exec tried to open (the kernel's open_exec
	// name, else the program's own #! line or PT_INTERP read in userspace).
	Interp       string
	InterpKernel bool

	// KernelHooks: the exec hooks were attached, so hooks that did not
	// fire are evidence too. Opened: exec opened the program, which passed
	// the permission and mount checks. Loaders counts the binary format
	// checks (security_bprm_check): 1 for the program, one more per
	// interpreter that was opened. InterpTried: a loader asked for an
	// interpreter (open_exec).
	KernelHooks bool
	Opened      bool
	Loaders     int
	InterpTried bool

	Caller Creds
	// Unsearchable is the first directory of the path the caller may not
	// search; NotDir the first component that is not a directory;
	// NearestParent the deepest existing directory of a missing path.
	Unsearchable  *Dir
	NotDir        string
	NearestParent string
	// Loop is a symbolic link chain that comes back on itself.
	Loop []string
	// Writer describes who holds the program open for writing (ETXTBSY).
	Writer string
	// Argument sizes (E2BIG), every string counted with its NUL. Measured:
	// the kernel counted all of argv and envp (ArgStrings strings, the
	// longest ArgLongest bytes); else ArgBytes is what the capture kept,
	// a lower bound when ArgBytesAtLeast. ArgLimit is exec's limit on all
	// of them for the caller, StackLimit the stack limit it derives from.
	ArgMeasured     bool
	ArgBytes        uint64
	ArgStrings      int
	ArgLongest      int
	ArgBytesAtLeast bool
	ArgLimit        uint64
	StackLimit      uint64
	// Seccomp: the caller runs under a seccomp filter. LSMs: the active
	// security modules, as the kernel lists them.
	Seccomp bool
	LSMs    []string
	// Arch is what this kernel runs natively.
	Arch Arch
}

// Result is a diagnosis.
type Result struct {
	Cause    string
	Text     string
	Inferred bool // rests on evidence read in userspace after the fact
}

// Diagnose picks the cause and writes the sentence.
func Diagnose(ev *Evidence) Result {
	switch ev.Errno {
	case unix.ENOENT:
		return notFound(ev)
	case unix.ENOEXEC:
		return badFormat(ev)
	case unix.EACCES:
		return denied(ev)
	case unix.EPERM:
		return notPermitted(ev)
	case unix.ETXTBSY:
		return textBusy(ev)
	case unix.E2BIG:
		return tooBig(ev)
	case unix.ELOOP:
		return loop(ev)
	case unix.ENOTDIR:
		return notDir(ev)
	case unix.EISDIR:
		return Result{Cause: event.CauseIsADirectory, Text: isDirText(ev.Program.Path)}
	}
	return unknown(ev)
}

func unknown(ev *Evidence) Result {
	return Result{Cause: event.CauseUnknown, Text: fmt.Sprintf("exec of %s failed: %s (%s)", name(ev.Program.Path), ev.Errno.Error(), errnoName(ev.Errno))}
}

func errnoName(e unix.Errno) string {
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return fmt.Sprintf("errno %d", int(e))
}

// name is how a path appears in a sentence: quoted when it holds anything
// a reader could misread (blanks, control characters such as a CR).
func name(p string) string {
	if p == "" {
		return "the program"
	}
	for _, r := range p {
		if r <= ' ' || r == 0x7f || r == '"' {
			return fmt.Sprintf("%q", p)
		}
	}
	return p
}

func isDirText(p string) string {
	return fmt.Sprintf("%s is a directory, not a program: name the program inside it", name(p))
}
