// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"path"
	"slices"
	"strings"

	"github.com/execfaild/execfaild/probe/event"
)

// filter is a validated FilterConfig ready to match events.
type filter struct{ c FilterConfig }

func newFilter(c FilterConfig) *filter { return &filter{c: c} }

// match tells whether ev passes the filter.
func (f *filter) match(ev *event.Event) bool { return f.matchExceptCause(ev) && f.matchCause(ev) }

// matchCause tells whether ev's cause passes. The global filter asks it
// only after PATH-search folding: the steps of a search carry not-found,
// and only the folded search is not-found-in-path.
func (f *filter) matchCause(ev *event.Event) bool {
	return includeExclude(f.c.Causes, f.c.ExcludeCauses, ev.Cause, func(p, v string) bool { return p == v })
}

// matchExceptCause tells whether ev passes everything but the cause.
func (f *filter) matchExceptCause(ev *event.Event) bool {
	c := &f.c
	switch c.KernelInvoked {
	case "only":
		if !ev.KernelInvoked {
			return false
		}
	case "exclude":
		if ev.KernelInvoked {
			return false
		}
	}
	if !includeExclude(c.Errors, c.ExcludeErrors, ev.Error, func(p, v string) bool { return p == v }) {
		return false
	}
	if len(c.UIDs) > 0 && !slices.Contains(c.UIDs, ev.Process.UID) {
		return false
	}
	if slices.Contains(c.ExcludeUIDs, ev.Process.UID) {
		return false
	}
	return includeExclude(c.Paths, c.ExcludePaths, ev.ResolvedPath(), matchPath) &&
		includeExclude(c.Comms, c.ExcludeComms, ev.Process.Comm, matchGlob) &&
		includeExclude(c.Units, c.ExcludeUnits, ev.Process.Unit, matchGlob) &&
		includeExclude(c.Cgroups, c.ExcludeCgroups, ev.Process.Cgroup, matchGlob)
}

func includeExclude(include, exclude []string, v string, match func(pattern, v string) bool) bool {
	if len(include) > 0 && !slices.ContainsFunc(include, func(p string) bool { return match(p, v) }) {
		return false
	}
	return !slices.ContainsFunc(exclude, func(p string) bool { return match(p, v) })
}

// matchGlob is path.Match plus "dir/**" for everything below dir, which
// path.Match cannot say because its "*" stops at "/".
func matchGlob(pattern, v string) bool {
	if dir, ok := strings.CutSuffix(pattern, "/**"); ok {
		if dir == "" {
			return strings.HasPrefix(v, "/")
		}
		if ok, _ := path.Match(dir, v); ok {
			return true
		}
		for d := path.Dir(v); d != "/" && d != "."; d = path.Dir(d) {
			if ok, _ := path.Match(dir, d); ok {
				return true
			}
		}
		return false
	}
	ok, _ := path.Match(pattern, v)
	return ok
}

// matchPath matches a program path; a pattern without "/" names the base
// name, so "curl" or "python3*" work wherever the program lives.
func matchPath(pattern, v string) bool {
	if !strings.Contains(pattern, "/") {
		ok, _ := path.Match(pattern, path.Base(v))
		return ok
	}
	return matchGlob(pattern, v)
}
