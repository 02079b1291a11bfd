// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"errors"
	"strings"
	"testing"
)

func TestChooseTransport(t *testing.T) {
	noRing := errors.New("map type not supported")
	cases := []struct {
		want, mode string
		ringErr    error
		got        string
	}{
		{TransportAuto, ModeAuto, nil, TransportRingbuf},
		{"", ModeFentry, nil, TransportRingbuf},
		{TransportAuto, ModeKprobe, noRing, TransportPerf},
		// legacy mode stands for a kernel before 5.8: no ring buffer there.
		{TransportAuto, ModeLegacy, nil, TransportPerf},
		{TransportRingbuf, ModeLegacy, nil, TransportRingbuf},
		{TransportPerf, ModeFentry, nil, TransportPerf},
		{TransportPerf, ModeAuto, noRing, TransportPerf},
	}
	for _, c := range cases {
		got, err := chooseTransport(c.want, c.mode, c.ringErr)
		if err != nil || got != c.got {
			t.Errorf("chooseTransport(%q, %q, %v) = %q, %v; want %q", c.want, c.mode, c.ringErr, got, err, c.got)
		}
	}
	_, err := chooseTransport(TransportRingbuf, ModeAuto, noRing)
	if err == nil || !strings.HasPrefix(err.Error(), "probe.transport ringbuf: BPF ring buffers are missing (Linux 5.8") {
		t.Errorf("ringbuf forced without one: %v", err)
	}
}

func TestPerfBufferBytes(t *testing.T) {
	cases := []struct{ total, ncpu, per int }{
		{1 << 22, 1, 1 << 22},
		{1 << 22, 2, 1 << 21},
		{1 << 22, 3, 1 << 20}, // shared out, rounded down to a power of two
		{1 << 22, 128, 1 << 16},
		{1 << 16, 64, minPerfBuffer}, // never below the largest record's need
	}
	for _, c := range cases {
		if got := perfBufferBytes(c.total, c.ncpu); got != c.per {
			t.Errorf("perfBufferBytes(%d, %d) = %d, want %d", c.total, c.ncpu, got, c.per)
		}
	}
	if need := headerSize + RecordDataSize; minPerfBuffer < 2*need {
		t.Errorf("a %d-byte buffer holds fewer than two %d-byte records", minPerfBuffer, need)
	}
}

func TestBufferBytes(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RingBufferBytes = 1 << 22
	if got := cfg.BufferBytes(4); got != 1<<22 {
		t.Errorf("4 MiB on 4 CPUs: %d", got)
	}
	// 256 CPUs get 64 KiB each, more than the 4 MiB asked for.
	if got := cfg.BufferBytes(256); got != 256<<16 {
		t.Errorf("4 MiB on 256 CPUs: %d, want %d", got, 256<<16)
	}
}
