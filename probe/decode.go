package probe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/execfaild/execfaild/probe/event"
)

// Values of bpf/event.h that the generated binding does not carry.
const (
	kindFailure = 1
	kindSuccess = 2

	syscallExecve   = 0
	syscallExecveat = 1
	syscallKernel   = 2

	hookOpen   = 1 << 0
	hookCreds  = 1 << 1
	hookLoader = 1 << 2
	hookInterp = 1 << 3

	flagArgsTrunc      = 1 << 0
	flagEnvTrunc       = 1 << 1
	flagHasBinary      = 1 << 2
	flagHasInterp      = 1 << 3
	flagStdinClosed    = 1 << 4
	flagHasStdin       = 1 << 5
	flagHasLoginUID    = 1 << 6
	flagBinPathTrunc   = 1 << 7
	flagStdinPathTrunc = 1 << 8
	flagPathTrunc      = 1 << 9
)

// headerSize is sizeof(struct ef_header), trailing padding included.
var headerSize = binary.Size(execfaildEfHeader{})

// record is one ring buffer record split into its header and strings.
type record struct {
	h          execfaildEfHeader
	path       string
	hasPath    bool
	interp     string
	binComps   []string // leaf first
	stdinComps []string // leaf first
	args       []string
	env        []string
}

var errShort = errors.New("record shorter than its header")

// decodeRecord parses the layout described in bpf/event.h. Every length is
// checked against the bytes actually received: a malformed record is an
// error, never a panic or a made-up field.
func decodeRecord(b []byte) (record, error) {
	var r record
	if len(b) < headerSize {
		return r, fmt.Errorf("decode: %w (%d < %d bytes)", errShort, len(b), headerSize)
	}
	if _, err := binary.Decode(b[:headerSize], binary.NativeEndian, &r.h); err != nil {
		return r, fmt.Errorf("decode header: %w", err)
	}
	switch r.h.Kind {
	case kindSuccess:
		return r, nil
	case kindFailure:
	default:
		return r, fmt.Errorf("decode: unknown record kind %d", r.h.Kind)
	}
	data := b[headerSize:]
	if int(r.h.DataLen) > len(data) {
		return r, fmt.Errorf("decode: data_len %d exceeds the %d bytes received", r.h.DataLen, len(data))
	}
	data = data[:r.h.DataLen]

	take := func(field string, n int) ([]byte, error) {
		if n > len(data) {
			return nil, fmt.Errorf("decode %s: %d bytes announced, %d left", field, n, len(data))
		}
		s := data[:n]
		data = data[n:]
		return s, nil
	}
	sections := []struct {
		name  string
		n     int
		count int // strings expected; -1 for exactly one when n > 0
		dst   *[]string
	}{
		{"path", int(r.h.PathLen), -1, nil},
		{"interp", int(r.h.InterpLen), -1, nil},
		{"binary path", int(r.h.BinPathLen), int(r.h.BinNcomp), &r.binComps},
		{"stdin path", int(r.h.StdinPathLen), int(r.h.StdinNcomp), &r.stdinComps},
		{"argv", int(r.h.ArgsLen), int(r.h.Argc), &r.args},
		{"envp", int(r.h.EnvLen), int(r.h.Envc), &r.env},
	}
	for i, s := range sections {
		raw, err := take(s.name, s.n)
		if err != nil {
			return r, err
		}
		strs, err := splitStrings(raw)
		if err != nil {
			return r, fmt.Errorf("decode %s: %w", s.name, err)
		}
		if s.count < 0 {
			if len(strs) > 1 {
				return r, fmt.Errorf("decode %s: %d strings where one was expected", s.name, len(strs))
			}
			if len(strs) == 1 {
				switch i {
				case 0:
					r.path, r.hasPath = strs[0], true
				case 1:
					r.interp = strs[0]
				}
			}
			continue
		}
		if len(strs) != s.count {
			return r, fmt.Errorf("decode %s: %d strings, header says %d", s.name, len(strs), s.count)
		}
		*s.dst = strs
	}
	return r, nil
}

// splitStrings splits back-to-back NUL-terminated strings.
func splitStrings(b []byte) ([]string, error) {
	var out []string
	for len(b) > 0 {
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			return nil, errors.New("string not NUL-terminated")
		}
		out = append(out, string(b[:i]))
		b = b[i+1:]
	}
	return out, nil
}

// joinComponents turns a leaf-first component list into a path. A walk
// that stopped short of the root (too deep) is shown with a leading "…/".
func joinComponents(comps []string, truncated bool) string {
	if len(comps) == 0 {
		if truncated {
			return ""
		}
		return "/"
	}
	parts := make([]string, len(comps))
	for i, c := range comps {
		parts[len(comps)-1-i] = c
	}
	p := strings.Join(parts, "/")
	if truncated {
		return "…/" + p
	}
	return "/" + p
}

// devFromKernel converts the kernel's internal dev_t (MAJOR<<20 | MINOR)
// to the st_dev encoding stat(2) returns in userspace.
func devFromKernel(dev uint32) uint64 {
	return unix.Mkdev(dev>>20, dev&0xfffff)
}

// FileTypeName names the type bits of an inode mode the way the event's
// stdin_type does. Anonymous inodes (eventfd, signalfd, …) carry no type bits.
func FileTypeName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFCHR:
		return "chr"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "sock"
	case unix.S_IFREG:
		return "reg"
	case unix.S_IFDIR:
		return "dir"
	case unix.S_IFBLK:
		return "blk"
	case unix.S_IFLNK:
		return "lnk"
	case 0:
		return "anon"
	}
	return fmt.Sprintf("unknown(%#o)", mode&unix.S_IFMT)
}

// stdinPath renders fd 0's path. Pipes and sockets live on pseudo file
// systems whose dentry has no usable name: show them the way
// /proc/<pid>/fd does.
func stdinPath(comps []string, truncated bool, mode uint32, ino uint64) string {
	pseudo := len(comps) == 1 && !truncated
	switch {
	case pseudo && mode&unix.S_IFMT == unix.S_IFIFO && comps[0] == "":
		return fmt.Sprintf("pipe:[%d]", ino)
	case mode&unix.S_IFMT == unix.S_IFSOCK:
		// An open socket is always a sockfs inode (a socket file on disk
		// cannot be opened); its dentry carries the protocol name.
		return fmt.Sprintf("socket:[%d]", ino)
	case pseudo && mode&unix.S_IFMT == 0:
		return "anon_inode:" + comps[0]
	case len(comps) == 0 && !truncated:
		return ""
	}
	return joinComponents(comps, truncated)
}

// stageFromHooks tells how far exec got from the hooks that fired. Without
// an open hook an attempt that fired nothing cannot be placed.
func stageFromHooks(hooks uint16, haveOpenHook bool) string {
	switch {
	case hooks&(hookLoader|hookInterp) != 0:
		return event.StageLoader
	case hooks&hookCreds != 0:
		return event.StageCreds
	case hooks&hookOpen != 0:
		return event.StageOpen
	case haveOpenHook:
		return event.StagePreOpen
	}
	return event.StageUnknown
}

// cString returns a NUL-terminated C char array as a string.
func cString(b []int8) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}

// toEvent builds the kernel's part of an event; enrichment adds the rest.
// bootToWall converts CLOCK_BOOTTIME nanoseconds to wall-clock time.
func (r *record) toEvent(bootToWall func(uint64) time.Time, haveOpenHook bool) *event.Event {
	h := &r.h
	e := &event.Event{
		Time:      bootToWall(h.BootNs),
		Path:      r.path,
		Arguments: r.args,
	}
	if e.Arguments == nil {
		e.Arguments = []string{}
	}
	e.SetErrno(h.Ret)
	switch h.Syscall {
	case syscallExecve:
		e.Syscall = event.SyscallExecve
	case syscallExecveat:
		e.Syscall = event.SyscallExecveat
		dirfd, flags := h.Dirfd, h.AtFlags
		e.Dirfd, e.Flags = &dirfd, &flags
	case syscallKernel:
		e.Syscall = event.SyscallKernel
		e.KernelInvoked = true
	}
	e.Stage = stageFromHooks(h.Hooks, haveOpenHook)
	if h.Flags&flagHasBinary != 0 {
		e.Binary = &event.Binary{
			Path:        joinComponents(r.binComps, h.Flags&flagBinPathTrunc != 0),
			DeviceID:    devFromKernel(h.BinDev),
			InodeNumber: h.BinIno,
			Ctime:       h.BinCtimeNs,
			InodeMode:   h.BinMode,
			Source:      event.SourceKernel,
		}
	}
	if h.Flags&flagHasInterp != 0 {
		e.InterpreterPath = r.interp
		e.InterpreterSource = event.SourceKernel
	}
	switch {
	case h.Flags&flagStdinClosed != 0:
		e.StdinType = "closed"
	case h.Flags&flagHasStdin != 0:
		mode := h.StdinMode
		e.StdinType = FileTypeName(mode)
		e.StdinMode = &mode
		e.StdinPath = stdinPath(r.stdinComps, h.Flags&flagStdinPathTrunc != 0, mode, h.StdinIno)
	}
	e.ArgumentsTruncated = h.Flags&flagArgsTrunc != 0
	e.Environment = r.env
	e.EnvironmentTruncated = h.Flags&flagEnvTrunc != 0
	e.Process = event.Process{
		PID:      h.Pid,
		TID:      h.Tid,
		PPID:     h.Ppid,
		UID:      h.Uid,
		GID:      h.Gid,
		EUID:     h.Euid,
		Comm:     cString(h.Comm[:]),
		CgroupID: h.CgroupId,
	}
	// 4294967295 is the kernel's "never set" loginuid.
	if h.Flags&flagHasLoginUID != 0 && h.Loginuid != 0xffffffff {
		l := h.Loginuid
		e.Process.LoginUID = &l
	}
	return e
}

// RecordDataSize is the room a record has for its strings (path,
// interpreter, path components, argv, envp): beyond it the lists are cut
// and marked truncated.
const RecordDataSize = len(execfaildEfEvent{}.Data)
