// SPDX-License-Identifier: Apache-2.0

package journal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/execfaild/execfaild/probe/event"
)

// readNative splits a native-protocol datagram the way journald reads it
// (systemd's journald-native.c): NAME=value up to a newline, or NAME
// followed by a newline, a 64-bit little-endian length, that many bytes
// and a newline.
func readNative(b []byte) ([]Field, error) {
	var out []Field
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			return nil, fmt.Errorf("field without a newline: %q", b)
		}
		line := b[:nl]
		if eq := bytes.IndexByte(line, '='); eq >= 0 {
			out = append(out, Field{Name: string(line[:eq]), Value: string(line[eq+1:])})
			b = b[nl+1:]
			continue
		}
		b = b[nl+1:]
		if len(b) < 8 {
			return nil, fmt.Errorf("binary field %q without its length", line)
		}
		n := binary.LittleEndian.Uint64(b)
		b = b[8:]
		if n >= uint64(len(b)) || b[n] != '\n' {
			return nil, fmt.Errorf("binary field %q: %d bytes announced, %d left or no newline after them", line, n, len(b))
		}
		out = append(out, Field{Name: string(line), Value: string(b[:n])})
		b = b[n+1:]
	}
	return out, nil
}

func sameFields(t *testing.T, got, want []Field) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d fields read back, %d sent: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].Name != want[i].Name || got[i].Value != want[i].Value {
			t.Fatalf("field %d reads back as %s=%q, sent %s=%q", i, got[i].Name, got[i].Value, want[i].Name, want[i].Value)
		}
	}
}

// FuzzEncodeNative: any value, framed after a valid name and before
// another field, reads back as itself and adds no field.
func FuzzEncodeNative(f *testing.F) {
	for _, v := range []string{"", "x", "a\nb", "\nEVIL=1", "EVIL=1\n", "\x00\xff", strings.Repeat("\n", 9), "a=b"} {
		f.Add("EXECFAIL_PATH", v)
	}
	f.Add("lower", "x")
	f.Add("_TRUSTED", "x")
	f.Fuzz(func(t *testing.T, name, value string) {
		// journald's rule (journal_field_valid), spelled out again.
		valid := name != "" && len(name) <= 64 && name[0] != '_' && !(name[0] >= '0' && name[0] <= '9') &&
			strings.Trim(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == ""
		if ValidFieldName(name) != valid {
			t.Fatalf("ValidFieldName(%q) = %v, journald says %v", name, !valid, valid)
		}
		if !valid {
			return
		}
		want := []Field{{Name: name, Value: value}, {Name: "PRIORITY", Value: "3"}}
		var buf bytes.Buffer
		for _, f := range want {
			EncodeNative(&buf, f.Name, f.Value)
		}
		got, err := readNative(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		sameFields(t, got, want)
	})
}

// FuzzEntry: the entry of a hostile event has valid field names only, and
// journald reads back exactly the fields sent.
func FuzzEntry(f *testing.F) {
	f.Add("/srv/x\nMESSAGE=forged", "run\x00a\nPRIORITY=0\x00", "c\n", "/bin/sh\r", "the cause\n\nX=1", "unit.service\n")
	f.Add("", "", "", "", "", "")
	f.Add("\xff\xfe", "\u202e\x00\U0001F600", "\x1b[31m", "\\", "\t", "user@1000.service")
	f.Fuzz(func(t *testing.T, path, argv, comm, interp, cause, unit string) {
		ev := event.Synthetic(time.Date(2026, 11, 27, 10, 2, 3, 0, time.UTC), "web-1")
		ev.Path, ev.InterpreterPath, ev.CauseText = path, interp, cause
		ev.Arguments = strings.Split(argv, "\x00")
		ev.Process.Comm, ev.Process.Unit = comm, unit
		want := Entry(&ev, 3)
		var buf bytes.Buffer
		for _, f := range want {
			if !ValidFieldName(f.Name) {
				t.Fatalf("invalid field name %q", f.Name)
			}
			EncodeNative(&buf, f.Name, f.Value)
		}
		got, err := readNative(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		sameFields(t, got, want)
	})
}
