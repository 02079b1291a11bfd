// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/execfaild/execfaild/probe/event"
	"github.com/execfaild/execfaild/probe/internal/diagnose"
)

// gatherAccess: EACCES and EPERM. The caller's credentials and policies
// always; the path's directories and the files' modes and mounts only
// while the kernel's hooks leave them open (they fire only once exec
// opened the program, which passed those checks).
func (d *diagnoser) gatherAccess(ev *diagnose.Evidence, e *event.Event, loc location) {
	ev.LSMs = d.lsmList()
	ev.Caller, ev.Seccomp = readCreds(loc.pidDir, e)
	if ev.Errno == unix.EPERM || ev.KernelHooks && ev.Opened && !ev.InterpTried {
		return
	}
	if !(ev.KernelHooks && ev.Opened) {
		if ev.Unsearchable = unsearchable(loc, e.Path, ev.Caller); ev.Unsearchable != nil {
			return
		}
		at, err := loc.program()
		if !checkFile(&ev.Program, at, err, loc) || ev.Program.Mode&unix.S_IFMT != unix.S_IFREG || ev.Program.Noexec {
			return
		}
	}
	if ev.Interp == "" {
		if at, err := loc.program(); err == nil {
			ev.Interp, _ = readInterpreter(at)
		}
	}
	if ev.Interp != "" {
		in := &diagnose.File{Path: ev.Interp}
		at, err := loc.in(ev.Interp)
		checkFile(in, at, err, loc)
		ev.Interpreter = in
	}
}

// checkFile fills the mode, owner and mount of a file (see statFile).
func checkFile(f *diagnose.File, at string, err error, loc location) bool {
	if !statFile(f, at, err) {
		return false
	}
	var fs unix.Statfs_t
	if unix.Statfs(at, &fs) == nil && fs.Flags&unix.ST_NOEXEC != 0 {
		f.Noexec = true
		f.NoexecMount = noexecMount(loc, f.Path)
	}
	return true
}

// readCreds reads the caller's file-system ids, groups, capabilities and
// seccomp mode from /proc/<pid>/status; a caller that is gone is described
// by the event's ids alone.
func readCreds(pidDir string, e *event.Event) (diagnose.Creds, bool) {
	c := diagnose.Creds{UID: e.Process.EUID, GID: e.Process.GID}
	root := e.Process.EUID == 0
	c.DACOverride, c.DACSearch = root, root
	if pidDir == "" {
		return c, false
	}
	b, err := os.ReadFile(pidDir + "/status")
	if err != nil {
		return c, false
	}
	c.Known = true
	seccomp := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, _ := strings.Cut(sc.Text(), ":")
		f := strings.Fields(val)
		switch {
		case key == "Uid" && len(f) == 4:
			c.UID = parseID(f[3])
		case key == "Gid" && len(f) == 4:
			c.GID = parseID(f[3])
		case key == "Groups":
			for _, g := range f {
				c.Groups = append(c.Groups, parseID(g))
			}
		case key == "CapEff" && len(f) == 1:
			caps, _ := strconv.ParseUint(f[0], 16, 64)
			c.DACOverride = caps&(1<<unix.CAP_DAC_OVERRIDE) != 0
			c.DACSearch = caps&(1<<unix.CAP_DAC_READ_SEARCH) != 0
		case key == "Seccomp" && len(f) == 1:
			seccomp = f[0] == "2"
		}
	}
	return c, seccomp
}

func parseID(s string) uint32 {
	v, _ := strconv.ParseUint(s, 10, 32)
	return uint32(v)
}

// unsearchable is the first directory of the path the caller may not
// search: from its root for an absolute path, from its cwd for a relative
// one, as the kernel walks it.
func unsearchable(loc location, callerPath string, c diagnose.Creds) *diagnose.Dir {
	if !path.IsAbs(loc.files.display) {
		return nil
	}
	start := "/"
	if !path.IsAbs(callerPath) && path.IsAbs(loc.cwd) {
		start = path.Clean(loc.cwd)
	}
	for _, dir := range dirsFrom(start, path.Dir(loc.files.display)) {
		var st unix.Stat_t
		if loc.dir.stat(dir, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return nil
		}
		d := diagnose.Dir{Path: dir, Mode: st.Mode, UID: st.Uid, GID: st.Gid}
		if !c.MaySearch(d) {
			return &d
		}
	}
	return nil
}

// dirsFrom lists start and every directory below it down to last.
func dirsFrom(start, last string) []string {
	if last != start && !strings.HasPrefix(last, strings.TrimSuffix(start, "/")+"/") {
		return nil
	}
	dirs := []string{start}
	rest := strings.TrimPrefix(strings.TrimPrefix(last, start), "/")
	cur := start
	for _, c := range strings.Split(rest, "/") {
		if c == "" {
			continue
		}
		cur = path.Join(cur, c)
		dirs = append(dirs, cur)
	}
	return dirs
}

// noexecMount is the mount point of a noexec mount holding file, from the
// mount table of whoever's root loc is.
func noexecMount(loc location, file string) string {
	if !path.IsAbs(file) {
		file = path.Join(loc.cwd, file)
	}
	b, err := os.ReadFile(loc.procDir + "/mountinfo")
	if err != nil {
		return ""
	}
	best := ""
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || !hasOption(f[5], "noexec") {
			continue
		}
		mp := unescapeMount(f[4])
		if (file == mp || strings.HasPrefix(file, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best = mp
		}
	}
	return best
}

func hasOption(opts, opt string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == opt {
			return true
		}
	}
	return false
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a blank).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// writerOf names the caller itself when it holds the program open for
// writing: the common cause of ETXTBSY (a program that writes a file and
// runs it without closing it, or leaks the descriptor into a child).
// Other processes are not searched: that would read every /proc/<pid>/fd.
func writerOf(loc location) string {
	if loc.pidDir == "" {
		return ""
	}
	var target unix.Stat_t
	if at, err := loc.program(); err != nil || unix.Stat(at, &target) != nil {
		return ""
	}
	ents, err := os.ReadDir(loc.pidDir + "/fd")
	if err != nil {
		return ""
	}
	for _, ent := range ents {
		var st unix.Stat_t
		if unix.Stat(loc.pidDir+"/fd/"+ent.Name(), &st) != nil || st.Dev != target.Dev || st.Ino != target.Ino {
			continue
		}
		if fdWritable(loc.pidDir + "/fdinfo/" + ent.Name()) {
			return fmt.Sprintf("the caller itself (pid %s, fd %s)", path.Base(loc.pidDir), ent.Name())
		}
	}
	return ""
}

// fdWritable reads the open flags of an fdinfo file.
func fdWritable(fdinfo string) bool {
	b, err := os.ReadFile(fdinfo)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "flags:"); ok {
			flags, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			return err == nil && flags&unix.O_ACCMODE != unix.O_RDONLY
		}
	}
	return false
}

// gatherSizes: what the capture counted of argv and environment, and the
// caller's stack limit, which exec's limit derives from.
func (d *diagnoser) gatherSizes(ev *diagnose.Evidence, e *event.Event, r *record, loc location) {
	if r.h.ArgBytes != 0 {
		ev.ArgMeasured = true
		ev.ArgBytes, ev.ArgStrings, ev.ArgLongest = r.h.ArgBytes, int(r.h.ArgStrings), int(r.h.ArgLongest)
	} else {
		ev.ArgBytes = uint64(r.h.ArgsLen) + uint64(r.h.EnvLen)
		ev.ArgBytesAtLeast = e.ArgumentsTruncated || e.EnvironmentTruncated || !d.captureEnv
	}
	if loc.pidDir == "" {
		return
	}
	b, err := os.ReadFile(loc.pidDir + "/limits")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "Max stack size")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return
		}
		if f[0] != "unlimited" {
			ev.StackLimit, _ = strconv.ParseUint(f[0], 10, 64)
		}
		ev.ArgLimit = diagnose.ArgLimit(ev.StackLimit)
	}
}
