// SPDX-License-Identifier: Apache-2.0

package diagnose

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/execfaild/execfaild/probe/event"
)

// denied explains EACCES. The kernel refuses a path with an unsearchable
// directory, a directory or special file, a noexec mount and a missing
// execute bit while opening it (before any exec hook fires), in that order
// of checks; a security module may refuse at any point. Once the hooks saw
// the program opened, only a security module is left.
func denied(ev *Evidence) Result {
	if ev.KernelHooks && ev.Opened && !ev.InterpTried {
		return securityPolicy(ev, false)
	}
	p := ev.Program
	// Opened: the program itself passed; an interpreter it names is left.
	if !(ev.KernelHooks && ev.Opened) {
		if r, ok := programChecks(ev); ok {
			return r
		}
	}
	if in := ev.Interpreter; in != nil && in.Stat && !in.Missing {
		if r, ok := fileChecks(ev, *in, fmt.Sprintf("the interpreter %s of %s", name(in.Path), name(p.Path))); ok {
			return r
		}
	}
	return securityPolicy(ev, true)
}

// programChecks explains a refusal by the program's path or file.
func programChecks(ev *Evidence) (Result, bool) {
	p := ev.Program
	if d := ev.Unsearchable; d != nil {
		return Result{Cause: event.CauseDirectoryNotSearchable, Inferred: true, Text: fmt.Sprintf(
			"%s may not search %s (mode %04o, owner %d, group %d): exec of %s needs execute (search) permission on every directory of its path",
			ev.Caller.who(), name(d.Path), d.Mode&0o7777, d.UID, d.GID, name(p.Path))}, true
	}
	if !p.Stat || p.Missing {
		return Result{Cause: event.CauseUnknown, Inferred: true, Text: fmt.Sprintf(
			"permission to execute %s was denied, and the file could not be inspected: it may lack execute permission, be on a noexec mount, or a security policy refused it",
			name(p.Path))}, true
	}
	return fileChecks(ev, p, name(p.Path))
}

// fileChecks applies the checks exec makes of one file, in the kernel's
// order, and explains the first that fails.
func fileChecks(ev *Evidence, f File, who string) (Result, bool) {
	switch {
	case f.Mode&unix.S_IFMT == unix.S_IFDIR:
		return Result{Cause: event.CauseIsADirectory, Inferred: true, Text: isDirText(f.Path)}, true
	case f.Mode&unix.S_IFMT != unix.S_IFREG:
		return Result{Cause: event.CauseNotExecutable, Inferred: true, Text: fmt.Sprintf(
			"%s is a %s, not a regular file: exec runs regular files only", who, fileType(f.Mode))}, true
	case f.Noexec:
		mount := "a file system mounted noexec"
		if f.NoexecMount != "" {
			mount = fmt.Sprintf("%s, which is mounted noexec", name(f.NoexecMount))
		}
		return Result{Cause: event.CauseNoexecMount, Inferred: true, Text: fmt.Sprintf(
			"%s is on %s: run it from another file system, or remount that one without noexec", who, mount)}, true
	case !ev.Caller.mayExec(f):
		return Result{Cause: event.CauseNotExecutable, Inferred: true, Text: notExecText(ev.Caller, f, who)}, true
	}
	return Result{}, false
}

func notExecText(c Creds, f File, who string) string {
	mode := fmt.Sprintf("%s has mode %04o (owner %d, group %d)", who, f.Mode&0o7777, f.UID, f.GID)
	if f.Mode&0o111 == 0 {
		return mode + ": no execute bit at all, which even root needs; chmod +x it if it is meant to run"
	}
	return fmt.Sprintf("%s: no execute permission for %s; grant it (chmod, chown or group membership) if it is meant to run", mode, c.who())
}

func fileType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFCHR:
		return "character device"
	case unix.S_IFBLK:
		return "block device"
	case unix.S_IFIFO:
		return "named pipe"
	case unix.S_IFSOCK:
		return "socket"
	}
	return fmt.Sprintf("file of type %#o", mode&unix.S_IFMT)
}

// who names the caller in a sentence.
func (c Creds) who() string {
	return fmt.Sprintf("uid %d", c.UID)
}

// mayExec is the kernel's execute permission check of a regular file
// (generic_permission, ACLs aside): with CAP_DAC_OVERRIDE any execute bit
// will do, else the owner, group or other bits that apply.
func (c Creds) mayExec(f File) bool {
	if c.DACOverride {
		return f.Mode&0o111 != 0
	}
	return f.Mode&c.classBit(f.UID, f.GID, 0o1) != 0
}

// MaySearch tells whether the caller may search (look up names in) a
// directory.
func (c Creds) MaySearch(d Dir) bool {
	if c.DACSearch || c.DACOverride {
		return true
	}
	return d.Mode&c.classBit(d.UID, d.GID, 0o1) != 0
}

// classBit shifts bit (of the "other" triplet) to the owner's or group's
// triplet when the caller is the owner or in the group.
func (c Creds) classBit(uid, gid uint32, bit uint32) uint32 {
	switch {
	case c.UID == uid:
		return bit << 6
	case c.GID == gid || slices.Contains(c.Groups, gid):
		return bit << 3
	}
	return bit
}

// notPermitted explains EPERM, which exec returns only for a policy: a
// security module after the file checks, or a seccomp filter.
func notPermitted(ev *Evidence) Result {
	if ev.KernelHooks && ev.Opened {
		return securityPolicy(ev, false)
	}
	if ev.Seccomp {
		return Result{Cause: event.CauseSecurityPolicy, Inferred: true, Text: fmt.Sprintf(
			"exec of %s was not permitted, and the caller runs under a seccomp filter, which may refuse it (operation not permitted); check the filter of the program or container runtime that set it",
			name(ev.Program.Path))}
	}
	return unknown(ev)
}

// securityPolicy: the file checks passed (proved by the kernel hooks, or
// found so in userspace afterwards), so a policy refused the exec. Only
// what the kernel lists is named.
func securityPolicy(ev *Evidence, inferred bool) Result {
	p := name(ev.Program.Path)
	var text string
	if inferred {
		text = fmt.Sprintf("%s passes the permission and mount checks, so a security policy refused its exec: %s", p, policies(ev))
	} else {
		at := "at the credentials check"
		if ev.Loaders > 0 {
			at = "at the binary format check"
		}
		text = fmt.Sprintf("%s passed the permission and mount checks, then a security policy refused its exec %s: %s", p, at, modules(ev.LSMs))
	}
	return Result{Cause: event.CauseSecurityPolicy, Inferred: inferred, Text: text + "; check the audit log for the denial"}
}

func policies(ev *Evidence) string {
	if ev.Seccomp {
		return modules(ev.LSMs) + ", or the caller's seccomp filter"
	}
	return modules(ev.LSMs)
}

// modules names the active security modules that can refuse an exec.
func modules(lsms []string) string {
	var deny []string
	for _, m := range lsms {
		switch m {
		case "capability", "lockdown", "yama", "loadpin", "safesetid":
		default:
			deny = append(deny, m)
		}
	}
	if len(deny) == 0 {
		return "a security module (LSM)"
	}
	return "a security module (active: " + strings.Join(deny, ", ") + ")"
}
