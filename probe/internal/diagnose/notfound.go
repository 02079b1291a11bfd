// SPDX-License-Identifier: Apache-2.0

package diagnose

import (
	"fmt"
	"strings"

	"github.com/execfaild/execfaild/probe/event"
)

// notFound explains ENOENT: the program is missing, or the interpreter it
// names (a #! line, or an ELF program's loader) is.
func notFound(ev *Evidence) Result {
	if r, ok := interpMissing(ev); ok {
		return r
	}
	p := ev.Program
	// With the hooks attached, none having fired means exec never opened
	// a file: the path itself does not resolve.
	kernel := ev.KernelHooks && !ev.Opened && !ev.InterpTried
	if !kernel && !p.Missing {
		return Result{Cause: event.CauseNotFound, Inferred: true, Text: fmt.Sprintf(
			"%s, or an interpreter it names, does not exist (exec found no such file or directory)", name(p.Path))}
	}
	text := name(p.Path) + " does not exist"
	if ev.NearestParent != "" {
		text += fmt.Sprintf(" (the nearest existing directory is %s)", name(ev.NearestParent))
	}
	return Result{Cause: event.CauseNotFound, Inferred: !kernel, Text: text + ": check the path, or install the program"}
}

// interpMissing: exec opened the program, and the interpreter it names
// could not be found. The kernel proves it when a loader asked for the
// interpreter and no further format check ran (an interpreter that opened
// would have been checked in turn); userspace when a stat finds it missing.
func interpMissing(ev *Evidence) (Result, bool) {
	if ev.Interp == "" {
		return Result{}, false
	}
	kernel := ev.KernelHooks && ev.InterpKernel && ev.InterpTried && ev.Loaders <= 1
	in := ev.Interpreter
	switch {
	case kernel || in != nil && in.Missing:
		return interpResult(ev, ev.Program, ev.Interp, !kernel), true
	case in != nil && in.Interp != "" && in.InterpMissing:
		// The interpreter exists; the one it names in turn does not.
		r := interpResult(ev, *in, in.Interp, true)
		r.Text = fmt.Sprintf("the interpreter of %s: %s", name(ev.Program.Path), r.Text)
		return r, true
	}
	return Result{}, false
}

// interpResult: f names the interpreter interp, which does not exist.
func interpResult(ev *Evidence, f File, interp string, inferred bool) Result {
	r := Result{Inferred: inferred}
	switch {
	case strings.HasSuffix(interp, "\r"):
		r.Cause = event.CauseInterpreterCRLF
		r.Text = fmt.Sprintf("the script %s has Windows (CRLF) line endings, so its interpreter %q does not exist; convert it with dos2unix %s",
			name(f.Path), interp, name(f.Path))
	case isELF(f.Head):
		r.Cause = event.CauseELFInterpreterMissing
		r.Text = fmt.Sprintf("%s needs the program loader %s, which does not exist: it was built for another %s; install that runtime or use a build for this system",
			name(f.Path), name(interp), libcOf(interp))
		r.Inferred = inferred || !f.HeadKernel
	default:
		r.Cause = event.CauseInterpreterMissing
		r.Text = fmt.Sprintf("the interpreter %s named in the #! line of %s does not exist: install it, or correct the #! line", name(interp), name(f.Path))
		r.Inferred = inferred || !f.HeadKernel
	}
	return r
}

// libcOf names the C library a loader belongs to, when its name says so.
func libcOf(loader string) string {
	switch {
	case strings.Contains(loader, "musl"):
		return "C library (musl, as on Alpine Linux)"
	case strings.Contains(loader, "ld-linux"):
		return "C library installation (glibc at another path or architecture)"
	}
	return "C library or distribution"
}
