// SPDX-License-Identifier: Apache-2.0

package provoke

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Who can prove a cause (Outcome.CauseProof): the errno alone, in every
// mode; the kernel's exec hooks, so that only tracepoint mode infers it;
// or only userspace after the fact, inferred in every mode.
const (
	ProofErrno     = "errno"
	ProofKernel    = "kernel"
	ProofUserspace = "userspace"
)

// expect sets the diagnosis a case must produce.
func expect(o *Outcome, err error, cause, proof string, names ...string) (*Outcome, error) {
	if err != nil {
		return nil, err
	}
	o.Cause, o.CauseProof, o.CauseNames = cause, proof, names
	return o, nil
}

// notFound: a plain missing path; the sentence names it.
func notFound(o *Outcome, err error, names ...string) (*Outcome, error) {
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		names = []string{o.Path}
	}
	return expect(o, err, "not-found", ProofKernel, names...)
}

// ErrNoLandlock: the kernel has no Landlock (not built, or not enabled at
// boot), so the security-policy case cannot be provoked with it.
var ErrNoLandlock = errors.New("landlock is not available on this kernel")

// landlockAvailable asks the kernel for its Landlock ABI version.
func landlockAvailable() error {
	const versionFlag = 1 << 0 // LANDLOCK_CREATE_RULESET_VERSION
	_, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, versionFlag)
	if errno != 0 {
		return fmt.Errorf("%w: %v", ErrNoLandlock, errno)
	}
	return nil
}

// forbidExec restricts the calling thread with a Landlock ruleset that
// handles execution and allows it nowhere: every exec it tries is refused
// when the file is opened, with EACCES, whatever the file's mode.
func forbidExec() error {
	attr := struct{ handledAccessFS uint64 }{1 << 0} // LANDLOCK_ACCESS_FS_EXECUTE
	fd, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr), 0)
	if errno != 0 {
		return fmt.Errorf("create ruleset: %v", errno)
	}
	defer unix.Close(int(fd))
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %v", err)
	}
	if _, _, errno := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, fd, 0, 0); errno != 0 {
		return fmt.Errorf("restrict self: %v", errno)
	}
	return nil
}

// refuseExecve installs, on the calling thread, a seccomp filter that
// answers execve with EPERM and allows everything else.
func refuseExecve() error {
	filter := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}, // seccomp_data.nr
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: unix.SYS_EXECVE},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %v", err)
	}
	if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&prog)), 0, 0); err != nil {
		return fmt.Errorf("install filter: %v", err)
	}
	return nil
}

// firstUnsearchable is the first directory on the way to p that uid/gid
// (no supplementary groups, no capabilities) may not search, from mode
// bits alone.
func firstUnsearchable(p string, uid, gid uint32) (string, error) {
	dir := "/"
	for _, c := range append([]string{""}, strings.Split(strings.Trim(filepath.Dir(p), "/"), "/")...) {
		dir = filepath.Join(dir, c)
		var st unix.Stat_t
		if err := unix.Stat(dir, &st); err != nil {
			return "", fmt.Errorf("stat %s: %w", dir, err)
		}
		bit := uint32(0o001)
		switch {
		case st.Uid == uid:
			bit = 0o100
		case st.Gid == gid:
			bit = 0o010
		}
		if st.Mode&bit == 0 {
			return dir, nil
		}
	}
	return "", fmt.Errorf("every directory of %s is searchable by uid %d", p, uid)
}

// diagnosisCases provoke the causes no other case does.
func diagnosisCases() []Case {
	_, loader, _, foreignName := machine()
	return []Case{
		{Name: "elf_interpreter_missing", Run: func(l *Lab) (*Outcome, error) {
			p := l.path("musl-prog")
			if err := writeExec(p, MissingLoaderProgram(loader)); err != nil {
				return nil, err
			}
			o, err := l.execve("elf_interpreter_missing", p, unix.ENOENT, ReachOpened, loader, nil)
			return expect(o, err, "elf-interpreter-missing", ProofKernel, p, loader)
		}},
		{Name: "wrong_architecture", Run: func(l *Lab) (*Outcome, error) {
			p := l.path("foreign-prog")
			if err := writeExec(p, ForeignProgram()); err != nil {
				return nil, err
			}
			o, err := l.execve("wrong_architecture", p, unix.ENOEXEC, ReachOpened, "", nil)
			return expect(o, err, "wrong-architecture", ProofKernel, p, foreignName)
		}},
		{Name: "eacces_directory", Run: func(l *Lab) (*Outcome, error) {
			o, err := l.execve("eacces_directory", l.Dir, unix.EACCES, ReachRefused, "", nil)
			return expect(o, err, "is-a-directory", ProofUserspace, l.Dir)
		}},
		{Name: "eacces_directory_not_searchable", Root: true, Run: func(l *Lab) (*Outcome, error) {
			id := uint32(65534)
			p := l.path("does-not-exist")
			dir, err := firstUnsearchable(p, id, id)
			if err != nil {
				return nil, fmt.Errorf("eacces_directory_not_searchable: %w", err)
			}
			o, err := l.execve("eacces_directory_not_searchable", p, unix.EACCES, ReachNone, "", func(r *request) { r.DropTo = &id })
			return expect(o, err, "directory-not-searchable", ProofUserspace, dir, "uid 65534")
		}},
		{Name: "eperm_seccomp", BeforeSyscall: true, Run: func(l *Lab) (*Outcome, error) {
			p := l.path("garbage")
			o, err := l.execve("eperm_seccomp", p, unix.EPERM, ReachRefused, "", func(r *request) { r.Seccomp = true })
			return expect(o, err, "security-policy", ProofUserspace, p, "seccomp")
		}},
		{Name: "eacces_security_policy", Run: func(l *Lab) (*Outcome, error) {
			if err := landlockAvailable(); err != nil {
				return nil, err
			}
			p := l.path("garbage")
			o, err := l.execve("eacces_security_policy", p, unix.EACCES, ReachRefused, "", func(r *request) { r.Landlock = true })
			return expect(o, err, "security-policy", ProofUserspace, p)
		}},
	}
}

func writeExec(p string, b []byte) error {
	if err := os.WriteFile(p, b, 0o755); err != nil {
		return err
	}
	return os.Chmod(p, 0o755)
}
