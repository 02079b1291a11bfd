// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/perf"
	"github.com/cilium/ebpf/ringbuf"
)

// recordReader is the kernel-to-userspace channel the records come
// through: a BPF ring buffer, or a perf event array on kernels without one.
// Both follow the same rules: Read blocks until a record, the deadline or
// Flush; after Flush it returns what was in the buffer, then errFlushed.
type recordReader interface {
	// read returns the next record's bytes.
	read() ([]byte, error)
	setDeadline(t time.Time)
	flush() error
	// pending tells whether records are left after read returned
	// errFlushed or a deadline error.
	pending() bool
	close() error
}

// errFlushed is what both readers return once a Flush has been read up to.
var errFlushed = ringbuf.ErrFlushed

func init() {
	// The two readers share their flush error; the drain depends on it.
	if !errors.Is(perf.ErrFlushed, errFlushed) {
		panic("perf and ring buffer readers disagree on ErrFlushed")
	}
}

// flushedOrDeadline: read stopped because of Flush or the deadline.
func flushedOrDeadline(err error) bool {
	return errors.Is(err, errFlushed) || errors.Is(err, os.ErrDeadlineExceeded)
}

// chooseTransport picks how records reach userspace. auto takes the ring
// buffer where the kernel has one, and the perf event array where it does
// not or where the legacy mode stands in for a kernel before 5.8.
func chooseTransport(want, mode string, ringbufErr error) (string, error) {
	switch want {
	case TransportRingbuf:
		if ringbufErr != nil {
			return "", fmt.Errorf("probe.transport ringbuf: BPF ring buffers are missing (Linux 5.8 or newer has them): %w", ringbufErr)
		}
		return TransportRingbuf, nil
	case TransportPerf:
		return TransportPerf, nil
	}
	if ringbufErr != nil || mode == ModeLegacy {
		return TransportPerf, nil
	}
	return TransportRingbuf, nil
}

func haveRingbuf() error { return features.HaveMapType(ebpf.RingBuf) }

type ringReader struct{ r *ringbuf.Reader }

func newRingReader(m *ebpf.Map) (recordReader, error) {
	r, err := ringbuf.NewReader(m)
	if err != nil {
		return nil, fmt.Errorf("open ring buffer: %w", err)
	}
	return ringReader{r}, nil
}

func (r ringReader) read() ([]byte, error) {
	rec, err := r.r.Read()
	return rec.RawSample, err
}
func (r ringReader) setDeadline(t time.Time) { r.r.SetDeadline(t) }
func (r ringReader) flush() error            { return r.r.Flush() }
func (r ringReader) pending() bool           { return r.r.AvailableBytes() > 0 }
func (r ringReader) close() error            { return r.r.Close() }

// perfReader reads the per-CPU buffers of a perf event array. The kernel
// tells it how many samples it could not write (PERF_RECORD_LOST); lost
// adds them up for Stats.
type perfReader struct {
	r    *perf.Reader
	lost *atomic.Uint64
}

// perfBufferBytes is the size of one CPU's buffer for a configured total:
// the total shared out, a power of two, and never below what the largest
// record needs.
func perfBufferBytes(total, ncpu int) int {
	per := total / max(ncpu, 1)
	size := minPerfBuffer
	for size*2 <= per {
		size *= 2
	}
	return size
}

// minPerfBuffer holds the largest record (24.8 KiB) with room to spare.
const minPerfBuffer = 1 << 16

// BufferBytes is the most memory the kernel-to-userspace buffers take on
// ncpu CPUs, whichever transport the kernel gets: the ring buffer's size,
// or the perf buffers', which the 64 KiB floor per CPU can make larger.
func (c Config) BufferBytes(ncpu int) int64 {
	perf := int64(max(ncpu, 1)) * int64(perfBufferBytes(c.RingBufferBytes, ncpu))
	return max(int64(c.RingBufferBytes), perf)
}

func newPerfReader(m *ebpf.Map, total int, lost *atomic.Uint64) (recordReader, error) {
	r, err := perf.NewReader(m, perfBufferBytes(total, int(m.MaxEntries())))
	if err != nil {
		return nil, fmt.Errorf("open perf buffers: %w", err)
	}
	return perfReader{r: r, lost: lost}, nil
}

func (r perfReader) read() ([]byte, error) {
	for {
		rec, err := r.r.Read()
		if err != nil {
			return nil, err
		}
		if rec.LostSamples > 0 {
			r.lost.Add(rec.LostSamples)
			continue
		}
		// A sample may carry up to 7 bytes of padding after the record;
		// the decoder reads only the lengths the header announces.
		return rec.RawSample, nil
	}
}
func (r perfReader) setDeadline(t time.Time) { r.r.SetDeadline(t) }
func (r perfReader) flush() error            { return r.r.Flush() }

// pending: the perf reader returns errFlushed and deadline errors only
// once every CPU's buffer has been read empty.
func (r perfReader) pending() bool { return false }
func (r perfReader) close() error  { return r.r.Close() }
