// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"sync"
	"time"

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
	// openedAt and runningAt (the records' clock): the process had the
	// pid just after the pidfd was opened and was running at runningAt,
	// so it had the pid throughout - a record made in between is its own,
	// with no need to look again.
	openedAt, runningAt uint64

	// The parent's side: comm through a descriptor held open (a /proc
	// file opened while the process ran stays its own), re-read on
	// every failure since an exec renames the process; exe read again
	// when comm changes.
	commFd    int
	named     bool
	comm, exe string
	namedAt   uint64 // when comm was last read

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
// For a record made at or before the last read (at, in the records'
// clock), that read is as recent as a new one would be, and stands.
func (h *procHandle) name(at, now uint64) (comm, exe string, ok bool) {
	if h.named && at != 0 && at <= h.namedAt {
		return h.comm, h.exe, true
	}
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
		h.namedAt = now
		return h.comm, h.exe, true
	}
	exe, _ = os.Readlink(procFile(h.pid, "exe"))
	if h.exited() {
		return "", "", false
	}
	h.comm, h.exe, h.named, h.namedAt = string(c), exe, true, now
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
	// slash: it is "/" from here, so paths under it read as the
	// caller reads them. prefix names it from here: "" then, else
	// /proc/self/fd/<fd>. procDir is the /proc directory whose
	// mountinfo is its mount namespace's.
	slash           bool
	prefix, procDir string
}

// holdRoots opens init's root and the daemon's own, the same mount once.
func holdRoots() []*heldRoot {
	var held []*heldRoot
	for _, r := range [][2]string{{"/proc/1/root", "/proc/1"}, {"/", "/proc/self"}} {
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

func holdRoot(dir, procDir string) *heldRoot {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	var stx unix.Statx_t
	var ns unix.Stat_t
	if unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_INO|unix.STATX_MNT_ID, &stx) != nil ||
		stx.Mask&unix.STATX_MNT_ID == 0 || unix.Stat(procDir+"/ns/mnt", &ns) != nil {
		unix.Close(fd)
		return nil
	}
	cr := callerRoot{known: true, mntNS: uint32(ns.Ino), dev: unix.Mkdev(stx.Dev_major, stx.Dev_minor), ino: stx.Ino}
	h := &heldRoot{fd: fd, cr: cr, mntID: stx.Mnt_id, prefix: "/proc/self/fd/" + strconv.Itoa(fd), procDir: procDir}
	if link, _ := os.Readlink(h.prefix); link == "/" {
		h.slash, h.prefix = true, ""
	}
	return h
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
	// gone holds, by pid, a time (in clock, the records' clock) at which
	// no running process had that pid: whatever process had it before
	// then has exited. A storm's records are read after their callers
	// are gone; this spares each of them the checks that would find so.
	gone map[uint32]uint64
	// The records' clock as read at clockAt; now() extends that reading
	// by the monotonic time since, which never runs ahead of it.
	clockRead uint64
	clockAt   time.Time
}

func newProcHandles(procRoot string) *procHandles {
	ph := &procHandles{off: procRoot != hostProcRoot}
	ph.setClock(unix.CLOCK_BOOTTIME)
	if !ph.off {
		ph.held = holdRoots()
	}
	return ph
}

// with calls fn with the live handle of pid, opening it on pid's second
// call; false, without calling fn, when there is none. at is when the
// record asking was made (the records' clock; 0: not known). running
// tells fn that the process was found running just now, not only when the
// record was made. fn runs under the table's lock.
func (ph *procHandles) with(pid uint32, at uint64, fn func(h *procHandle, running bool)) bool {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	if ph.off || pid == 0 {
		return false
	}
	h := ph.m[pid]
	before := ph.now()
	running := true
	switch {
	case h != nil && at != 0 && h.openedAt <= at && at <= h.runningAt:
		// The handle's process had the pid when the record was made.
		running = false
	case h != nil && !h.exited():
		h.runningAt = before
	case h != nil:
		// The pid may be another process's by now: forget this one.
		h.close()
		delete(ph.m, pid)
		return false
	case h == nil:
		if h = ph.open(pid); h == nil {
			return false
		}
	}
	fn(h, running)
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
	before := ph.now()
	fd, err := unix.PidfdOpen(int(pid), 0)
	switch {
	case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EPERM):
		ph.off = true
		return nil
	case errors.Is(err, unix.ESRCH):
		ph.markGone(pid, before)
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
	h := &procHandle{pid: pid, pidfd: fd, commFd: -1, openedAt: ph.now()}
	ph.m[pid] = h
	return h
}

// running tells whether the process with a handle on pid runs now.
func (ph *procHandles) running(pid uint32) bool {
	alive := false
	ph.with(pid, 0, func(_ *procHandle, now bool) { alive = now })
	return alive
}

// setClock names the records' clock: CLOCK_BOOTTIME or CLOCK_MONOTONIC.
func (ph *procHandles) setClock(clock int32) {
	var ts unix.Timespec
	ph.clockAt = time.Now()
	if unix.ClockGettime(clock, &ts) == nil {
		ph.clockRead = uint64(ts.Nano())
	}
}

// now is a time in the records' clock no later than the present (0 when
// the clock could not be read): read without a system call, it may fall
// behind CLOCK_BOOTTIME by the time suspended since setClock, which only
// makes a process's exit known for fewer of its records.
func (ph *procHandles) now() uint64 {
	if ph.clockRead == 0 {
		return 0
	}
	return ph.clockRead + uint64(time.Since(ph.clockAt))
}

// exitedBefore tells whether the process that had pid at time at (the
// records' clock; 0: not known) has exited since, as a check found.
func (ph *procHandles) exitedBefore(pid uint32, at uint64) bool {
	if at == 0 {
		return false
	}
	ph.mu.Lock()
	defer ph.mu.Unlock()
	t, ok := ph.gone[pid]
	return ok && at < t
}

// noteGone records that a check begun at time before found no running
// process with pid: every process that had it earlier has exited.
func (ph *procHandles) noteGone(pid uint32, before uint64) {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	ph.markGone(pid, before)
}

// markGone is noteGone for a caller holding the lock.
func (ph *procHandles) markGone(pid uint32, before uint64) {
	if before == 0 || before <= ph.gone[pid] {
		return
	}
	if ph.gone == nil || len(ph.gone) >= maxCacheEntries {
		ph.gone = make(map[uint32]uint64, 64)
	}
	ph.gone[pid] = before
}

// heldFor returns the held root the kernel's record cr names, if any.
func (ph *procHandles) heldFor(cr callerRoot) *heldRoot {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	for _, r := range ph.held {
		if r.cr == cr {
			return r
		}
	}
	return nil
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
