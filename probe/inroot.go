// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"path"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// rootDir is a caller's root, for the absolute paths the caller names.
//
// While the caller's root is ours, a path is named prefix+path ("" or a
// held descriptor's /proc/self/fd/<n>, both "/" to us) and resolves as it
// did for the caller. Under any other root - a container's, a chroot's,
// init's seen from a sandboxed daemon - a walk through /proc/<pid>/root
// would take an absolute symlink, or "..", back into our root, to files
// the caller never saw. There a path is opened beneath a descriptor on
// the root (RESOLVE_IN_ROOT), as the kernel resolved it for the caller.
// Kernels before 5.6 lack openat2; there paths are named prefix+path.
type rootDir struct {
	prefix string
	fd     int  // -1: not opened yet, or names are prefix+path
	own    bool // fd is opened from prefix here, and closed with close
	plain  bool // names are prefix+path
	opened []int
	names  map[string]string
}

// noOpenat2 is set once the kernel refused openat2 itself.
var noOpenat2 atomic.Bool

// sharedRootDir is a root whose paths are ours: prefix+path names them.
func sharedRootDir(prefix string) *rootDir { return &rootDir{prefix: prefix, fd: -1, plain: true} }

// heldRootDir is the held root h; its descriptor stays the holder's.
func heldRootDir(h *heldRoot) *rootDir {
	if h.slash {
		return sharedRootDir(h.prefix)
	}
	return &rootDir{prefix: h.prefix, fd: h.fd, plain: noOpenat2.Load()}
}

// procRootDir is a root reached through /proc (/proc/<pid>/root), opened
// on first use.
func procRootDir(prefix string) *rootDir {
	return &rootDir{prefix: prefix, fd: -1, own: true, plain: noOpenat2.Load()}
}

// open opens p, absolute in the root, as the caller would have.
func (r *rootDir) open(p string, flags int) (int, error) {
	if !r.plain {
		if r.fd < 0 {
			fd, err := unix.Open(r.prefix, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return -1, err
			}
			r.fd = fd
		}
		// Not cleaned: ".." after a symlink is the kernel's to resolve.
		rel := strings.TrimLeft(p, "/")
		if rel == "" {
			rel = "."
		}
		how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: unix.RESOLVE_IN_ROOT}
		fd, err := unix.Openat2(r.fd, rel, &how)
		switch err {
		case unix.ENOSYS:
			noOpenat2.Store(true)
			r.plain = true
		case unix.EPERM:
			// A seccomp filter that predates openat2 (an O_PATH open
			// itself is never refused so).
		default:
			return fd, err
		}
	}
	return unix.Open(r.named(p), flags|unix.O_CLOEXEC, 0)
}

// named is p under the prefix, as written.
func (r *rootDir) named(p string) string { return r.prefix + "/" + strings.TrimLeft(p, "/") }

// openBeneath opens rel from the directory base names, failing with EXDEV
// when the walk would leave it.
func openBeneath(base, rel string, flags int) (int, error) {
	dir, err := unix.Open(base, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(dir)
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: unix.RESOLVE_BENEATH}
	fd, err := unix.Openat2(dir, rel, &how)
	if err == unix.ENOSYS {
		noOpenat2.Store(true)
	}
	return fd, err
}

// keep names the open descriptor fd until close.
func (r *rootDir) keep(fd int) string {
	r.opened = append(r.opened, fd)
	return "/proc/self/fd/" + strconv.Itoa(fd)
}

// stat stats p, following symlinks.
func (r *rootDir) stat(p string, st *unix.Stat_t) error {
	if r.plain {
		return unix.Stat(r.named(p), st)
	}
	fd, err := r.open(p, unix.O_PATH)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fstat(fd, st)
}

// name is a name for p that opens the file the caller would have found,
// for functions that take a path; it stays valid until close.
func (r *rootDir) name(p string) (string, error) {
	if r.plain {
		return r.named(p), nil
	}
	if n, ok := r.names[p]; ok {
		return n, nil
	}
	fd, err := r.open(p, unix.O_PATH)
	if err != nil {
		return "", err
	}
	n := r.keep(fd)
	if r.names == nil {
		r.names = map[string]string{}
	}
	r.names[p] = n
	return n, nil
}

// readlink reads the symlink p, its directories resolved in the root.
func (r *rootDir) readlink(p string) (string, error) {
	p = path.Clean("/" + p)
	if r.plain {
		return readlink(r.prefix + p)
	}
	dir, err := r.open(path.Dir(p), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return "", err
	}
	defer unix.Close(dir)
	return readlinkat(dir, path.Base(p))
}

func readlink(name string) (string, error) { return readlinkat(unix.AT_FDCWD, name) }

func readlinkat(dir int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dir, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// close closes what was opened here.
func (r *rootDir) close() {
	if r == nil {
		return
	}
	for _, fd := range r.opened {
		unix.Close(fd)
	}
	r.opened, r.names = nil, nil
	if r.own && r.fd >= 0 {
		unix.Close(r.fd)
		r.fd = -1
	}
}
