// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/execfaild/execfaild/probe/event"
)

// A combined digest clears every descriptive field its failures did not
// share (merge). Some of those fields have no absent form in the event
// (return_value, error, path, syscall, pid), so an empty or zero value in
// a digest means "not shared", never a real 0 or "". These helpers let
// every renderer say so instead of printing the zero.

// ErrnoShared tells whether ev's errno is every failure's.
func ErrnoShared(ev *event.Event) bool { return ev.ReturnValue != 0 || ev.Error != "" }

// PathShared tells whether ev's path is every failure's; a single failure
// always has its path, even an empty (unreadable) one.
func PathShared(ev *event.Event) bool { return !ev.Digest || ev.Path != "" || ev.PathTruncated }

// PIDShared tells whether one process made all the failures of ev.
func PIDShared(ev *event.Event) bool { return ev.Process.PID != 0 }

// Times is "37 times", or for a digest of repeats after a first
// notification "37 more times", in the right number.
func Times(n uint64, digest bool) string {
	s := strconv.FormatUint(n, 10)
	if digest {
		s += " more"
	}
	if n == 1 {
		return s + " time"
	}
	return s + " times"
}

// unsharedKeys are the event's top-level JSON keys without an absent form,
// left out of a digest whose failures did not share them.
var unsharedKeys = map[string]func(*event.Event) bool{
	"return_value": func(ev *event.Event) bool { return !ErrnoShared(ev) },
	"error":        func(ev *event.Event) bool { return ev.Error == "" },
	"error_text":   func(ev *event.Event) bool { return ev.ErrorText == "" },
	"syscall":      func(ev *event.Event) bool { return ev.Syscall == "" },
	"path":         func(ev *event.Event) bool { return !PathShared(ev) },
}

// OmitUnshared takes ev's JSON object (encoding/json's names) and, for a
// digest, leaves out the fields its failures did not share rather than
// claiming "path": "" or "return_value": 0. The webhook and file sinks
// send what it returns.
func OmitUnshared(ev *event.Event, obj []byte) ([]byte, error) {
	if !ev.Digest {
		return obj, nil
	}
	drop := map[string]bool{}
	for k, f := range unsharedKeys {
		if f(ev) {
			drop[k] = true
		}
	}
	if len(drop) == 0 {
		return obj, nil
	}
	return dropKeys(obj, drop)
}

// dropKeys removes top-level keys from a JSON object, keeping the order of
// the others.
func dropKeys(obj []byte, drop map[string]bool) ([]byte, error) {
	var fields []struct {
		k string
		v json.RawMessage
	}
	dec := json.NewDecoder(bytes.NewReader(obj))
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("encode event: %w", err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("encode event: %w", err)
		}
		k, _ := t.(string)
		if !drop[k] {
			fields = append(fields, struct {
				k string
				v json.RawMessage
			}{k, v})
		}
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(f.k)
		b.Write(kb)
		b.WriteByte(':')
		b.Write(f.v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
