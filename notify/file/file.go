// SPDX-License-Identifier: Apache-2.0

// Package file holds the "stdout" and "file" sinks: one event JSON object
// per line (the schema of package probe/event), for `execfaild run | jq`, for watching a
// file and for feeding other tools.
package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/probe/event"
)

func init() {
	notify.RegisterSink("stdout", func() notify.SinkConfig { return &StdoutConfig{} })
	notify.RegisterSink("file", func() notify.SinkConfig { return &FileConfig{Path: DefaultPath, Mode: 0o600} })
}

// DefaultPath is where a file sink writes unless told otherwise: below the
// unit's LogsDirectory=, the one place under /var/log its dynamic user may
// write, and rotated by the package's logrotate file.
const DefaultPath = "/var/log/execfaild/failures.jsonl"

// Mode is a permission written in TOML as an octal integer (0o600), also
// accepted as a string ("0600"), and printed in octal.
type Mode uint32

func (m Mode) MarshalTOML() ([]byte, error) { return []byte(fmt.Sprintf("0o%o", uint32(m))), nil }

func (m *Mode) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case int64:
		if x < 0 || x > 0o777 {
			return fmt.Errorf("0o%o is not a permission (0o000 to 0o777)", x)
		}
		*m = Mode(x)
	case string:
		n, err := strconv.ParseUint(strings.TrimPrefix(x, "0o"), 8, 32)
		if err != nil || n > 0o777 {
			return fmt.Errorf("%q is not an octal permission like 0o600", x)
		}
		*m = Mode(n)
	default:
		return fmt.Errorf("mode must be an octal integer like 0o600, not %T", v)
	}
	return nil
}

// StdoutConfig is a [[sink.stdout]] table; it has only the common settings.
type StdoutConfig struct {
	notify.SinkCommon
}

func (c *StdoutConfig) Validate() error { return nil }

func (c *StdoutConfig) New(env notify.Env) (notify.Sink, error) {
	return &writerSink{w: os.Stdout}, nil
}

// FileConfig is a [[sink.file]] table.
type FileConfig struct {
	notify.SinkCommon
	// Path is appended to; it is reopened when it was moved away (logrotate).
	// Default: DefaultPath.
	Path string `toml:"path"`
	// Mode is used when the file is created (0o600: events carry argv).
	Mode Mode `toml:"mode"`
}

func (c *FileConfig) Validate() error {
	if c.Path == "" {
		return notify.Errorf("path", "missing: the file to append events to")
	}
	if !filepath.IsAbs(c.Path) {
		return notify.Errorf("path", "must be absolute, not %q", c.Path)
	}
	if c.Mode == 0 || c.Mode > 0o777 {
		return notify.Errorf("mode", "must be a permission like 0o600, not 0o%o", uint32(c.Mode))
	}
	if c.Mode&0o200 == 0 {
		return notify.Errorf("mode", "0o%o leaves the owner unable to append", uint32(c.Mode))
	}
	return nil
}

func (c *FileConfig) New(env notify.Env) (notify.Sink, error) {
	return &fileSink{path: c.Path, mode: os.FileMode(c.Mode)}, nil
}

// encode renders one event as a JSON line. HTML escaping stays off: these
// lines are read by people and jq, not embedded in web pages.
func encode(ev *event.Event) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		return nil, notify.Permanent(fmt.Errorf("encode event: %w", err))
	}
	if !ev.Digest {
		return b.Bytes(), nil
	}
	line, err := notify.OmitUnshared(ev, bytes.TrimSuffix(b.Bytes(), []byte("\n")))
	if err != nil {
		return nil, notify.Permanent(err)
	}
	return append(line, '\n'), nil
}

// writerSink writes to a stream that is already open (stdout).
type writerSink struct {
	w  io.Writer
	bg background
}

func (s *writerSink) Send(ctx context.Context, ev *event.Event) error {
	line, err := encode(ev)
	if err != nil {
		return err
	}
	return s.bg.do(ctx, nil, func() error {
		if _, err := s.w.Write(line); err != nil {
			return fmt.Errorf("write event: %w", err)
		}
		return nil
	})
}

func (s *writerSink) Close() error { return nil }

// background runs one blocking write at a time on a goroutine of its own,
// so Send returns when its context ends: a pipe nobody reads, a FIFO
// without a reader or a hung network file system must not hold a shutdown
// past systemd's stop timeout. Blocking file and pipe writes cannot be
// interrupted, so an abandoned write carries on; its notification is
// spooled, and should the write complete after all, that line appears
// twice rather than never.
type background struct {
	mu      sync.Mutex
	pending chan struct{} // closed when the abandoned write returns
}

var errEarlierWrite = errors.New("an earlier write is still blocked")

// do runs f. inline, asked once no earlier write is pending (nil: never),
// tells that f cannot block for long and may run on the caller's
// goroutine.
func (b *background) do(ctx context.Context, inline func() bool, f func() error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending != nil {
		select {
		case <-b.pending:
			b.pending = nil
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", errEarlierWrite, ctx.Err())
		}
	}
	if inline != nil && inline() {
		return f()
	}
	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		err = f()
	}()
	select {
	case <-done:
		return err
	case <-ctx.Done():
		b.pending = done
		return fmt.Errorf("write abandoned: %w", ctx.Err())
	}
}

// busy tells whether an abandoned write is still running.
func (b *background) busy() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending == nil {
		return false
	}
	select {
	case <-b.pending:
		b.pending = nil
		return false
	default:
		return true
	}
}

// fileSink appends to a file, reopening it when it was rotated. Only the
// function background runs touches f.
type fileSink struct {
	path string
	mode os.FileMode
	f    *os.File
	// id is f's device and inode, from when it was opened: the file it
	// is stays put, only what the path names may change.
	id [2]uint64
	// local: f is a regular file on a local file system, whose writes
	// return without a goroutine of their own to abandon.
	local bool
	bg    background
}

func (s *fileSink) Send(ctx context.Context, ev *event.Event) error {
	line, err := encode(ev)
	if err != nil {
		return err
	}
	return s.bg.do(ctx, s.writesLocally, func() error { return s.write(line) })
}

// writesLocally tells whether the next write goes to the open local file
// (background runs it with nothing pending, so f and local are its own).
func (s *fileSink) writesLocally() bool { return s.f != nil && s.local }

func (s *fileSink) write(line []byte) error {
	if err := s.open(); err != nil {
		return err
	}
	// One write per line: with O_APPEND, readers never see half a line
	// interleaved with another writer's.
	if _, err := s.f.Write(line); err != nil {
		s.f.Close()
		s.f = nil
		return fmt.Errorf("write %s: %w", s.path, err)
	}
	return nil
}

// open (re)opens the file when it is not open or the path now names a
// different file.
func (s *fileSink) open() error {
	if s.f != nil {
		// One stat per line: the open file's device and inode cannot
		// change, only what the path names.
		var cur syscall.Stat_t
		if syscall.Stat(s.path, &cur) == nil && [2]uint64{uint64(cur.Dev), cur.Ino} == s.id {
			return nil
		}
		s.f.Close()
		s.f = nil
	}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_CLOEXEC, s.mode)
	if err != nil {
		if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EISDIR) {
			// Retrying will not change permissions; the operator must.
			return notify.Permanent(fmt.Errorf("open %s: %w", s.path, err))
		}
		return fmt.Errorf("open %s: %w", s.path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat %s: %w", s.path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		f.Close()
		return fmt.Errorf("stat %s: no device and inode", s.path)
	}
	s.f, s.id, s.local = f, [2]uint64{uint64(st.Dev), st.Ino}, false
	if fi.Mode().IsRegular() {
		var fs syscall.Statfs_t
		var err error
		if c, cerr := f.SyscallConn(); cerr == nil {
			c.Control(func(fd uintptr) { err = syscall.Fstatfs(int(fd), &fs) })
			s.local = err == nil && localFS(int64(fs.Type))
		}
	}
	return nil
}

// localFS tells whether a file system of this type (statfs f_type) is a
// local one, whose writes end without a server or daemon to wait for:
// network file systems, FUSE and 9p are not.
func localFS(magic int64) bool {
	switch uint32(magic) {
	case 0xef53, // ext2, ext3, ext4
		0x58465342, // xfs
		0x9123683e, // btrfs
		0x01021994, // tmpfs
		0x858458f6, // ramfs
		0xf2f52010, // f2fs
		0x2fc12fc1, // zfs
		0x794c7630: // overlayfs
		return true
	}
	return false
}

func (s *fileSink) Close() error {
	if s.bg.busy() {
		// The blocked write owns f; the file is closed when the
		// process exits.
		return nil
	}
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
