// SPDX-License-Identifier: Apache-2.0

package provoke

import (
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	MaybeHelper()
	os.Exit(m.Run())
}

// TestCasesReturnClaimedErrno checks, without any probe, that each case
// makes the kernel return what the case claims and that the helper's view of
// itself matches what the case set up. The probe suite relies on both.
func TestCasesReturnClaimedErrno(t *testing.T) {
	root := unix.Geteuid() == 0
	lab, err := NewLab(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Error(err)
		}
	})
	for _, c := range Cases(Limits{MaxArgs: 32, MaxEnv: 32, MaxArgLen: 256}) {
		t.Run(c.Name, func(t *testing.T) {
			if c.Root && !root {
				if os.Getenv("CI") == "true" {
					t.Fatal("needs root, and CI runs as root")
				}
				t.Skip("needs root")
			}
			o, err := c.Run(lab)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := o.Release(); err != nil {
					t.Errorf("release helper: %v", err)
				}
			}()
			if o.Got != o.Errno {
				t.Errorf("kernel returned %v (%d), case claims %v (%d)", unix.ErrnoName(o.Got), int(o.Got), unix.ErrnoName(o.Errno), int(o.Errno))
			}
			checkCaller(t, c.Name, o)
			checkBinary(t, c.Name, o)
			checkStdin(t, c.Name, o)
		})
	}
}

func checkCaller(t *testing.T, name string, o *Outcome) {
	t.Helper()
	c := o.Caller
	if c.PPID != uint32(os.Getpid()) {
		t.Errorf("caller ppid %d, want the test process %d", c.PPID, os.Getpid())
	}
	if c.PID == 0 || c.PID == uint32(os.Getpid()) {
		t.Errorf("caller pid %d is not a separate helper", c.PID)
	}
	if name == "non_main_thread" {
		if c.TID == c.PID || c.MainThread {
			t.Errorf("exec from pid %d tid %d: want a non-main thread", c.PID, c.TID)
		}
	} else if c.TID != c.PID && !o.Succeeded {
		t.Errorf("exec from pid %d tid %d: want the main thread", c.PID, c.TID)
	}
	if c.Comm == "" {
		t.Error("caller comm empty")
	}
	if name == "unprivileged_caller" || name == "eacces_directory_not_searchable" {
		if c.UID != 65534 || c.GID != 65534 || c.EUID != 65534 {
			t.Errorf("caller uid/gid/euid %d/%d/%d, want 65534", c.UID, c.GID, c.EUID)
		}
	} else if c.UID != uint32(os.Getuid()) {
		t.Errorf("caller uid %d, want %d", c.UID, os.Getuid())
	}
	if c.Cwd != "" && o.Syscall != "kernel" {
		// The helper runs in the lab dir; the path is what matters for
		// relative cases.
		if !strings.HasPrefix(c.Cwd, "/") {
			t.Errorf("caller cwd %q not absolute", c.Cwd)
		}
	}
	if name == "enoent_then_success" && !o.Succeeded {
		t.Error("follow-up exec did not succeed")
	}
	if (o.Syscall == "execveat") != (o.Dirfd != nil) {
		t.Errorf("syscall %s with dirfd %v", o.Syscall, o.Dirfd)
	}
	if o.Dirfd != nil && *o.Dirfd < 0 {
		t.Errorf("execveat dirfd %d, want an open descriptor", *o.Dirfd)
	}
}

func checkBinary(t *testing.T, name string, o *Outcome) {
	t.Helper()
	switch o.Reach {
	case ReachNone:
		if o.Binary != nil {
			t.Errorf("reach none but binary %+v", o.Binary)
		}
		return
	default:
		if o.Binary == nil {
			t.Fatalf("reach %v but no binary stat", o.Reach)
		}
	}
	b := o.Binary
	wantType := uint32(unix.S_IFREG)
	if name == "eacces_directory" {
		wantType = unix.S_IFDIR
	}
	if b.Ino == 0 || b.Ctime == 0 || b.Mode&unix.S_IFMT != wantType {
		t.Errorf("implausible binary stat %+v", b)
	}
	if name == "execveat_empty_path_memfd" {
		if !strings.HasPrefix(b.Path, "/memfd:execfaild-provoke") {
			t.Errorf("memfd binary path %q", b.Path)
		}
		return
	}
	if !strings.HasPrefix(b.Path, "/") {
		t.Errorf("binary path %q not absolute", b.Path)
	}
	var st unix.Stat_t
	if err := unix.Stat(b.Path, &st); err != nil {
		t.Fatalf("stat binary: %v", err)
	}
	if st.Ino != b.Ino || st.Dev != b.Dev {
		t.Errorf("binary %s: stat says dev %d ino %d, case says %d %d", b.Path, st.Dev, st.Ino, b.Dev, b.Ino)
	}
}

func checkStdin(t *testing.T, name string, o *Outcome) {
	t.Helper()
	want := map[string]string{
		"stdin_tty":    "chr",
		"stdin_pipe":   "fifo",
		"stdin_file":   "reg",
		"stdin_socket": "sock",
		"stdin_closed": "closed",
	}[name]
	if want == "" {
		want = "chr" // /dev/null
	}
	if o.Stdin.Type != want {
		t.Errorf("stdin type %q, want %q (%+v)", o.Stdin.Type, want, o.Stdin)
	}
	if want == "closed" {
		if !o.Stdin.Closed || o.Stdin.Link != "" {
			t.Errorf("closed stdin reported as %+v", o.Stdin)
		}
		return
	}
	if TypeName(o.Stdin.Mode) != want {
		t.Errorf("stdin mode 0%o is not %s", o.Stdin.Mode, want)
	}
	switch name {
	case "stdin_tty":
		if !strings.Contains(o.Stdin.Link, "pts/") {
			t.Errorf("tty stdin link %q", o.Stdin.Link)
		}
	case "stdin_pipe":
		if !strings.HasPrefix(o.Stdin.Link, "pipe:[") {
			t.Errorf("pipe stdin link %q", o.Stdin.Link)
		}
	case "stdin_socket":
		if !strings.HasPrefix(o.Stdin.Link, "socket:[") {
			t.Errorf("socket stdin link %q", o.Stdin.Link)
		}
	case "stdin_file":
		if !strings.HasSuffix(o.Stdin.Link, "/stdin-file") {
			t.Errorf("file stdin link %q", o.Stdin.Link)
		}
	default:
		if o.Stdin.Link != "/dev/null" {
			t.Errorf("default stdin link %q, want /dev/null", o.Stdin.Link)
		}
	}
}

func TestTypeName(t *testing.T) {
	for mode, want := range map[uint32]string{
		unix.S_IFCHR | 0o620:  "chr",
		unix.S_IFIFO | 0o600:  "fifo",
		unix.S_IFSOCK | 0o777: "sock",
		unix.S_IFREG | 0o644:  "reg",
		unix.S_IFDIR | 0o755:  "dir",
		unix.S_IFBLK | 0o660:  "blk",
		unix.S_IFLNK | 0o777:  "lnk",
		0o600:                 "anon",
	} {
		if got := TypeName(mode); got != want {
			t.Errorf("TypeName(0%o) = %q, want %q", mode, got, want)
		}
	}
}

func TestLimitCasesMeetAndExceed(t *testing.T) {
	lim := Limits{MaxArgs: 5, MaxEnv: 7, MaxArgLen: 40}
	exact := fill("arg", lim.MaxArgs, lim.MaxArgLen)
	if len(exact) != 5 || len(exact[1]) != 40 || exact[0] != "arg0" {
		t.Errorf("exact argv %q", exact)
	}
	env := fill("EXECFAILD_FILL_", lim.MaxEnv-len(Env), lim.MaxArgLen)
	if len(env)+len(Env) != 7 || len(env[1]) != 40 || env[0] != "EXECFAILD_FILL_0=v" {
		t.Errorf("exact env %q", env)
	}
	over := fill("arg", lim.MaxArgs+8, lim.MaxArgLen+100)
	if len(over) != 13 || len(over[1]) != 140 {
		t.Errorf("truncation argv has %d entries, second %d bytes", len(over), len(over[1]))
	}
}

// TestTypeNameUnknown: type bits that name no file type are spelled as
// the probe spells them, so a report and its oracle cannot differ on them.
func TestTypeNameUnknown(t *testing.T) {
	if got, want := TypeName(0o030600), "unknown(030000)"; got != want {
		t.Errorf("TypeName(0o030600) = %q, want %q", got, want)
	}
}

// TestStormDeadlineFollowsProgress: a storm runs as long as it keeps
// making execs, however much longer than the helper's idle bound that is
// (a machine slower than the one a total bound was tuned on), and a storm
// that stops making progress is ended after the idle bound, saying how far
// it got.
func TestStormDeadlineFollowsProgress(t *testing.T) {
	lab, err := NewLab(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	defer func(d time.Duration) { helperTimeout = d }(helperTimeout)
	helperTimeout = 2500 * time.Millisecond
	storm := func(repeat int, pace time.Duration) (*Outcome, error) {
		return lab.execve("storm", lab.path("paced-missing"), unix.ENOENT, ReachNone, "", func(r *request) {
			r.Repeat, r.Pace = repeat, pace
		})
	}

	// 400 execs 15 ms apart: 6 s, over twice the idle bound.
	t0 := time.Now()
	o, err := storm(400, 15*time.Millisecond)
	if err != nil {
		t.Fatalf("a storm making progress for %v was stopped: %v", time.Since(t0).Round(time.Millisecond), err)
	}
	o.Release()
	if o.Got != unix.ENOENT {
		t.Errorf("storm got %s, want ENOENT", unix.ErrnoName(o.Got))
	}
	if d := time.Since(t0); d < 2*helperTimeout {
		t.Fatalf("the storm took %v, not longer than the idle bound: the case is not made", d)
	}

	// Two execs 4 s apart: the first second's progress report never comes.
	_, err = storm(2, 4*time.Second)
	if err == nil || !strings.Contains(err.Error(), "without progress (0 of 2 storm execs made)") {
		t.Fatalf("a storm without progress: got %v, want it stopped after %v without progress", err, helperTimeout)
	}
}
