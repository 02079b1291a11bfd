// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// Size caps for files a configuration names. A secret is a URL or a
// token; PEM material is a certificate chain or a key. Anything larger is
// a wrong path (a log, /dev/zero, a disk image), and reading it whole
// would exhaust memory.
const (
	MaxSecretFileBytes = 64 << 10
	MaxPEMFileBytes    = 1 << 20
)

// ReadFileCapped reads a regular file of at most max bytes. Devices,
// FIFOs and directories are refused without reading: a FIFO would block
// the caller until someone writes to it, a device may never end. Errors
// name the path, never the content.
func ReadFileCapped(path string, max int64) ([]byte, error) {
	// O_NONBLOCK keeps the open of a FIFO from waiting for a writer; it has
	// no effect on a regular file's reads.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%s)", path, fileKind(fi.Mode()))
	}
	if fi.Size() > max {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d allowed", path, fi.Size(), max)
	}
	// The size can grow between the stat and the read: read one byte more
	// than allowed to notice.
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, err
		}
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: more than the %d bytes allowed", path, max)
	}
	return b, nil
}

func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a fifo"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	}
	return "mode " + m.String()
}
