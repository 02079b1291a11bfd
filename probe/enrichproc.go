package probe

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// maxProcHandles bounds the processes enrichment holds handles on (two
// descriptors each). A storm comes from few processes and their parents;
// a full table is emptied like the other caches.
const maxProcHandles = 128

// procHandle is what enrichment keeps of one process it met more than
// once, as a failing caller or as a failing caller's parent. Its pidfd
// names that process and no other: a pid is reused only after its process
// is reaped, and from its exit on the pidfd polls readable. Whatever is
// read through /proc/<pid> is believed only when the pidfd still shows the
// process running afterwards, so a pid reused in between cannot lend its
// new owner's answers to the old one.
type procHandle struct {
	pid   uint32
	pidfd int

	// The parent's side: comm through a descriptor held open (a /proc
	// file opened while the process ran stays its own), re-read on
	// every failure since an exec renames the process; exe read again
	// when comm changes.
	commFd    int
	named     bool
	comm, exe string

	// The caller's side, checked once: which held root is its root
	// (the same mount and directory; nil: none), and whether
	// /proc/<pid>/root names it "/" from here.
	rootChecked bool
	root        *heldRoot
	rootSlash   bool
}

// exited tells whether the process has exited (a zombie or gone): its
// pid may then be reused, and nothing more is read through it.
func (h *procHandle) exited() bool {
	fds := [1]unix.PollFd{{Fd: int32(h.pidfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds[:], 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err != nil || n != 0
	}
}

func (h *procHandle) close() {
	unix.Close(h.pidfd)
	if h.commFd >= 0 {
		unix.Close(h.commFd)
	}
}

func procFile(pid uint32, name string) string {
	return "/proc/" + strconv.FormatUint(uint64(pid), 10) + "/" + name
}

// name returns the process's comm and exe: comm read afresh, exe only when
// comm changed (or for the first time). false when the process is gone.
func (h *procHandle) name() (comm, exe string, ok bool) {
	if h.commFd < 0 {
		fd, err := unix.Open(procFile(h.pid, "comm"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", "", false
		}
		h.commFd = fd
		if h.exited() {
			return "", "", false
		}
	}
	var buf [64]byte
	n, err := unix.Pread(h.commFd, buf[:], 0)
	if err != nil {
		return "", "", false
	}
	c := bytes.TrimSuffix(buf[:n], []byte("\n"))
	if h.named && string(c) == h.comm {
		return h.comm, h.exe, true
	}
	exe, _ = os.Readlink(procFile(h.pid, "exe"))
	if h.exited() {
		return "", "", false
	}
	h.comm, h.exe, h.named = string(c), exe, true
	return h.comm, h.exe, true
}

// sharedRoot returns the held root that cr, the root the kernel recorded
// at a failure of this process, is as the process sees it, so that its
// absolute paths can be opened from there (slash: and named from here as
// the caller names them); nil when there is none. The kernel's record
// names a directory, not a mount: a chroot into a bind mount of "/"
// records the same one. So the first time, the process's root mount is
// compared with the held roots'; a process that later chroots into such a
// bind mount without leaving its mount namespace is not noticed.
func (h *procHandle) sharedRoot(cr callerRoot, held []*heldRoot) (root *heldRoot, slash bool) {
	if !cr.known {
		return nil, false
	}
	if !h.rootChecked {
		proc := procFile(h.pid, "root")
		var stx unix.Statx_t
		err := unix.Statx(unix.AT_FDCWD, proc, 0, unix.STATX_INO|unix.STATX_MNT_ID, &stx)
		link, _ := os.Readlink(proc)
		if err != nil || stx.Mask&unix.STATX_MNT_ID == 0 || h.exited() {
			return nil, false
		}
		h.rootChecked = true
		h.rootSlash = link == "/"
		for _, r := range held {
			if stx.Mnt_id == r.mntID && stx.Ino == r.cr.ino {
				h.root = r
			}
		}
	}
	if h.root == nil || h.root.cr != cr {
		return nil, false
	}
	return h.root, h.rootSlash
}

// heldRoot is a root directory held open: init's, which most programs
// share, and the daemon's own. A path opened from it is found as those
// programs find it, without a walk through /proc/<pid>/root. Pinning
// these mounts is harmless; other processes' roots (containers, chroots)
// are never held open, so that nothing here keeps them from being
// unmounted.
type heldRoot struct {
	fd    int
	cr    callerRoot
	mntID uint64
}

// holdRoots opens init's root and the daemon's own, the same mount once.
func holdRoots() []*heldRoot {
	var held []*heldRoot
	for _, r := range [][2]string{{"/proc/1/root", "/proc/1/ns/mnt"}, {"/", "/proc/self/ns/mnt"}} {
		h := holdRoot(r[0], r[1])
		if h == nil {
			continue
		}
		if len(held) > 0 && held[0].mntID == h.mntID && held[0].cr == h.cr {
			unix.Close(h.fd)
			continue
		}
		held = append(held, h)
	}
	return held
}

func holdRoot(dir, mntNS string) *heldRoot {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	var stx unix.Statx_t
	var ns unix.Stat_t
	if unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_INO|unix.STATX_MNT_ID, &stx) != nil ||
		stx.Mask&unix.STATX_MNT_ID == 0 || unix.Stat(mntNS, &ns) != nil {
		unix.Close(fd)
		return nil
	}
	cr := callerRoot{known: true, mntNS: uint32(ns.Ino), dev: unix.Mkdev(stx.Dev_major, stx.Dev_minor), ino: stx.Ino}
	return &heldRoot{fd: fd, cr: cr, mntID: stx.Mnt_id}
}

// open opens path, absolute, from this root.
func (r *heldRoot) open(path string) (int, error) {
	rel := strings.TrimLeft(path, "/")
	if rel == "" {
		rel = "."
	}
	return unix.Openat(r.fd, rel, unix.O_PATH|unix.O_CLOEXEC, 0)
}

// procHandles holds the handles, by pid, of processes that stay a while:
// the first failure of a pid goes through /proc as before, the second
// opens a handle, so a storm of one-shot processes pays nothing extra.
type procHandles struct {
	mu   sync.Mutex
	off  bool // no pidfds: a fixture /proc, or pidfd_open refused
	held []*heldRoot
	m    map[uint32]*procHandle
	// once holds pids seen once. It decides only when a handle is worth
	// opening; a reused pid here costs a handle, never a wrong answer.
	once map[uint32]struct{}
}

func newProcHandles(procRoot string) *procHandles {
	ph := &procHandles{off: procRoot != hostProcRoot}
	if !ph.off {
		ph.held = holdRoots()
	}
	return ph
}

// with calls fn with the live handle of pid, opening it on pid's second
// call; false, without calling fn, when there is none. fn runs under the
// table's lock.
func (ph *procHandles) with(pid uint32, fn func(h *procHandle)) bool {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	if ph.off || pid == 0 {
		return false
	}
	h := ph.m[pid]
	switch {
	case h != nil && h.exited():
		// The pid may be another process's by now: forget this one.
		h.close()
		delete(ph.m, pid)
		return false
	case h == nil:
		if h = ph.open(pid); h == nil {
			return false
		}
	}
	fn(h)
	return true
}

// open opens a handle on pid when pid was seen before.
func (ph *procHandles) open(pid uint32) *procHandle {
	if _, ok := ph.once[pid]; !ok {
		if ph.once == nil || len(ph.once) >= maxCacheEntries {
			ph.once = make(map[uint32]struct{}, 64)
		}
		ph.once[pid] = struct{}{}
		return nil
	}
	fd, err := unix.PidfdOpen(int(pid), 0)
	switch {
	case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EPERM):
		ph.off = true
		return nil
	case err != nil:
		return nil
	}
	if len(ph.m) >= maxProcHandles {
		ph.closeAll()
	}
	if ph.m == nil {
		ph.m = make(map[uint32]*procHandle, 16)
	}
	h := &procHandle{pid: pid, pidfd: fd, commFd: -1}
	ph.m[pid] = h
	return h
}

func (ph *procHandles) closeAll() {
	for _, h := range ph.m {
		h.close()
	}
	ph.m = nil
}

// close releases every handle and the held roots.
func (ph *procHandles) close() {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	ph.closeAll()
	for _, r := range ph.held {
		unix.Close(r.fd)
	}
	ph.held = nil
	ph.off = true
}

func (ph *procHandles) len() int {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	return len(ph.m)
}
