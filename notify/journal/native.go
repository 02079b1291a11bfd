// SPDX-License-Identifier: Apache-2.0

package journal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// go-systemd's journal.Send speaks the same native protocol but always to
// the socket path compiled into that package (changeable only with
// -ldflags -X), so neither a test socket nor a bind-mounted journal socket
// in a container can be reached through it; and it spills large entries
// into a file under /dev/shm, which a sandboxed unit may not be able to
// write. The sender here takes the socket path as a setting and spills into
// a sealed memfd, which needs no file system and which journald maps
// instead of copying.

// EncodeNative appends one field of an entry in journald's native
// protocol. A value without a newline goes as NAME=value\n; any other value
// (newline inside) goes as NAME\n<64-bit little-endian length><bytes>\n,
// which carries any byte sequence unchanged. The daemon's own log lines
// use it too.
func EncodeNative(buf *bytes.Buffer, name, value string) {
	if !strings.ContainsRune(value, '\n') {
		buf.WriteString(name)
		buf.WriteByte('=')
		buf.WriteString(value)
		buf.WriteByte('\n')
		return
	}
	buf.WriteString(name)
	buf.WriteByte('\n')
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(value)))
	buf.Write(n[:])
	buf.WriteString(value)
	buf.WriteByte('\n')
}

// ValidFieldName applies journald's rule for field names a client may set:
// upper-case ASCII letters, digits and underscore, not starting with an
// underscore or a digit, at most 64 bytes.
func ValidFieldName(name string) bool {
	if name == "" || len(name) > 64 || name[0] == '_' || (name[0] >= '0' && name[0] <= '9') {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// sender writes entries to one journald socket.
type sender struct {
	addr *net.UnixAddr
	conn *net.UnixConn
}

func (s *sender) open() error {
	if s.conn != nil {
		return nil
	}
	// An autobound, unconnected datagram socket: each entry names the
	// destination, so a restarted journald is reached without reconnecting.
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("open datagram socket: %w", err)
	}
	s.conn = c
	return nil
}

// send delivers one encoded entry: in a single datagram when the socket
// takes it, otherwise in a sealed memfd passed with SCM_RIGHTS.
func (s *sender) send(ctx context.Context, entry []byte) error {
	if err := s.open(); err != nil {
		return err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		// journald drains its socket quickly; a full queue for this long
		// means it is stuck, and the worker should get the error back.
		deadline = time.Now().Add(10 * time.Second)
	}
	if err := s.conn.SetWriteDeadline(deadline); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	// A cancelled drain has no deadline of its own: moving the deadline
	// into the past ends a send blocked on a journald that does not read.
	conn := s.conn
	stop := context.AfterFunc(ctx, func() { conn.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	abandoned := func(err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("send to %s abandoned: %w", s.addr.Name, ctx.Err())
		}
		return err
	}
	_, _, err := s.conn.WriteMsgUnix(entry, nil, s.addr)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EMSGSIZE) && !errors.Is(err, unix.ENOBUFS) {
		return abandoned(fmt.Errorf("send to %s: %w", s.addr.Name, err))
	}
	fd, err := sealedMemfd(entry)
	if err != nil {
		return err
	}
	defer fd.Close()
	if _, _, err := s.conn.WriteMsgUnix(nil, unix.UnixRights(int(fd.Fd())), s.addr); err != nil {
		return abandoned(fmt.Errorf("send memfd to %s: %w", s.addr.Name, err))
	}
	return nil
}

// sealedMemfd returns a memfd holding data, sealed against any change:
// journald only accepts a passed memfd when it cannot be modified after
// the fact.
func sealedMemfd(data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate("execfaild-journal", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "execfaild-journal")
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("write memfd: %w", err)
	}
	seals := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal memfd: %w", err)
	}
	return f, nil
}

func (s *sender) close() error {
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}
