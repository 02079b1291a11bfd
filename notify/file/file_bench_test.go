// SPDX-License-Identifier: Apache-2.0

package file

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/execfaild/execfaild/probe/event"
)

// BenchmarkFileSend: a line to a regular local file, written on the
// sending goroutine (as Send does now) and on a goroutine of its own (as
// every write went before), in one run for the ratio.
func BenchmarkFileSend(b *testing.B) {
	ev := event.Synthetic(when, "web-1")
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		inline bool
	}{{"inline", true}, {"own goroutine", false}} {
		b.Run(c.name, func(b *testing.B) {
			s := &fileSink{path: filepath.Join(b.TempDir(), "events.jsonl"), mode: 0o600}
			defer s.Close()
			inline := s.writesLocally
			if !c.inline {
				inline = nil
			}
			b.ReportAllocs()
			for b.Loop() {
				line, err := encode(&ev)
				if err != nil {
					b.Fatal(err)
				}
				if err := s.bg.do(ctx, inline, func() error { return s.write(line) }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
