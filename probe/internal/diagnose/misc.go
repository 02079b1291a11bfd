// SPDX-License-Identifier: Apache-2.0

package diagnose

import (
	"fmt"
	"strings"

	"github.com/execfaild/execfaild/probe/event"
)

// MaxArgStrlen is the kernel's limit on one argument or environment
// string (MAX_ARG_STRLEN, 32 pages of 4 KiB).
const MaxArgStrlen = 32 * 4096

// ArgLimit is exec's limit on argv and environment together for a stack
// limit (RLIMIT_STACK soft value; 0 for unlimited): a quarter of it, at
// most 6 MiB and at least 128 KiB (bprm_stack_limits).
func ArgLimit(stack uint64) uint64 {
	const most, least = 6 << 20, MaxArgStrlen
	limit := uint64(most)
	if stack != 0 && stack/4 < limit {
		limit = stack / 4
	}
	return max(limit, least)
}

func textBusy(ev *Evidence) Result {
	by := ""
	if ev.Writer != "" {
		by = " by " + ev.Writer
	}
	return Result{Cause: event.CauseTextBusy, Text: fmt.Sprintf(
		"%s is open for writing%s (text file busy): wait for the writer to finish, or install by writing a new file and renaming it over the old one",
		name(ev.Program.Path), by)}
}

// tooBig explains E2BIG, naming the limit the sizes broke when the kernel
// measured them.
func tooBig(ev *Evidence) Result {
	p := name(ev.Program.Path)
	fix := ": pass large data through a file or stdin instead"
	r := Result{Cause: event.CauseArgumentListTooLong}
	switch {
	case ev.ArgMeasured && ev.ArgLongest > MaxArgStrlen:
		r.Text = fmt.Sprintf("one argument or environment string passed to %s has %d bytes, over exec's limit of %d for one string (all %d strings: %d bytes)%s",
			p, ev.ArgLongest, MaxArgStrlen, ev.ArgStrings, ev.ArgBytes, fix)
	case ev.ArgMeasured && ev.ArgLimit != 0:
		r.Text = fmt.Sprintf("the arguments and environment passed to %s are %d strings of %d bytes (and %d bytes of pointers), over exec's limit of %d%s%s",
			p, ev.ArgStrings, ev.ArgBytes, 8*ev.ArgStrings, ev.ArgLimit, stackNote(ev.StackLimit), fix)
	case ev.ArgMeasured:
		r.Text = fmt.Sprintf("the arguments and environment passed to %s are %d strings of %d bytes, the longest %d: too large for exec, which takes at most %d bytes per string%s",
			p, ev.ArgStrings, ev.ArgBytes, ev.ArgLongest, MaxArgStrlen, fix)
	default:
		at := ""
		if ev.ArgBytesAtLeast {
			at = "at least "
		}
		limit := ""
		if ev.ArgLimit != 0 {
			limit = fmt.Sprintf(" and %d for all together%s", ev.ArgLimit, stackNote(ev.StackLimit))
		}
		r.Text = fmt.Sprintf("the arguments and environment passed to %s (%s%d bytes) are too large for exec, which takes at most %d bytes per string%s%s",
			p, at, ev.ArgBytes, MaxArgStrlen, limit, fix)
	}
	return r
}

func stackNote(stack uint64) string {
	if stack == 0 {
		return ""
	}
	return fmt.Sprintf(" (a quarter of the %d-byte stack limit, at most 6 MiB)", stack)
}

// loop explains ELOOP: a symbolic link loop, or - once a loader ran - #!
// interpreters nested deeper than the kernel follows.
func loop(ev *Evidence) Result {
	p := name(ev.Program.Path)
	switch {
	case ev.KernelHooks && ev.Loaders > 0:
		return Result{Cause: event.CauseUnknown, Text: fmt.Sprintf(
			"the #! interpreters of %s nest deeper than the kernel follows (too many levels): point the #! line at a real program", p)}
	case len(ev.Loop) > 1:
		return Result{Cause: event.CauseSymlinkLoop, Inferred: !ev.KernelHooks, Text: fmt.Sprintf(
			"%s is a symbolic link loop (%s): fix or remove one of the links", p, strings.Join(ev.Loop, " -> "))}
	case ev.KernelHooks:
		return Result{Cause: event.CauseSymlinkLoop, Text: fmt.Sprintf(
			"resolving %s met too many symbolic links (a loop): fix or remove one of the links", p)}
	}
	return Result{Cause: event.CauseUnknown, Text: fmt.Sprintf(
		"exec of %s met too many levels of symbolic links or of #! interpreters (ELOOP)", p)}
}

func notDir(ev *Evidence) Result {
	if ev.NotDir == "" {
		return Result{Cause: event.CauseNotADirectory, Text: fmt.Sprintf(
			"a component of the path %s is not a directory: check the path", name(ev.Program.Path))}
	}
	return Result{Cause: event.CauseNotADirectory, Text: fmt.Sprintf(
		"%s is not a directory, but the path %s uses it as one: check the path", name(ev.NotDir), name(ev.Program.Path))}
}
