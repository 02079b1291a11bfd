// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"bytes"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// maxCacheEntries bounds each enrichment cache. A full cache is emptied
// rather than managed entry by entry: refilling costs what enrichment
// cost without a cache, and a storm of distinct processes cannot grow
// memory.
const maxCacheEntries = 4096

// boundedCache is a map that empties itself when it reaches its bound.
type boundedCache[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]V
}

func (c *boundedCache[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *boundedCache[K, V]) put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCacheEntries {
		c.m = make(map[K]V, 64)
	}
	c.m[k] = v
}

func (c *boundedCache[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// procIdentity names one process for its whole life: a pid is reused only
// after its process is gone, and the new one has a later start time. comm
// is part of it because a successful exec keeps pid and start time but
// renames the process (and changes its exe).
type procIdentity struct {
	pid   uint32
	start uint64 // clock ticks after boot, /proc/<pid>/stat field 22
	comm  string
}

// readProcStat returns a process's comm and start time from
// /proc/<pid>/stat: one read that both names the process and tells a
// reused pid apart.
func readProcStat(file string, buf []byte) (comm string, start uint64, ok bool) {
	f, err := os.Open(file)
	if err != nil {
		return "", 0, false
	}
	n, _ := f.Read(buf)
	f.Close()
	b := buf[:n]
	// comm is in parentheses and may itself hold spaces and parentheses:
	// it ends at the last ')'.
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return "", 0, false
	}
	comm = string(b[open+1 : end])
	// Fields from 3 (state) on follow the ')', one space apart; start
	// time is field 22.
	rest := b[end+1:]
	for field := 2; field < 22; field++ {
		i := bytes.IndexByte(rest, ' ')
		if i < 0 {
			return "", 0, false
		}
		rest = rest[i+1:]
	}
	if j := bytes.IndexByte(rest, ' '); j >= 0 {
		rest = rest[:j]
	}
	start, err = strconv.ParseUint(string(rest), 10, 64)
	return comm, start, err == nil
}

// cgroupInfo is what a cgroup path tells: the path and the units and
// container it names.
type cgroupInfo struct {
	path, unit, userUnit, container string
}

// fileKey names one version of a file: an inode on a device, changed
// (content, mode, owner) when its ctime moves. Size and mtime are part of
// it too: filesystems keep ctime in coarse clock ticks, and a file
// rewritten within one tick keeps its ctime.
type fileKey struct {
	dev, ino     uint64
	ctime, mtime int64
	size         int64
}

// interpreter is what a file's content names as its interpreter. Only
// content is cached: whether the mount allows exec depends on the mount
// the caller went through, not on the file.
type interpreter struct {
	path string
	ok   bool
}

func statCtime(st *unix.Stat_t) int64 { return st.Ctim.Sec*1e9 + st.Ctim.Nsec }
