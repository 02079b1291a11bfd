// SPDX-License-Identifier: Apache-2.0

package config

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/execfaild/execfaild/internal/poll"
	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/notify/webhook/webhooktest"
	"github.com/execfaild/execfaild/probe/event"
)

// TestWebhookOutageAndRestartLoseNothing: the configuration file, the real
// pipeline and the webhook sink against a receiver that verifies
// signatures. The receiver is down while failures arrive and the daemon
// restarts meanwhile; once it is back, it holds every failure, counted
// exactly.
func TestWebhookOutageAndRestartLoseNothing(t *testing.T) {
	const secret = "hmac-key-for-test"
	rcv, err := webhooktest.Start(webhooktest.Options{HMACSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	rcv.Stop()

	spool := t.TempDir()
	file := filepath.Join(t.TempDir(), "execfaild.toml")
	toml := fmt.Sprintf(`
[spool]
dir = %q
retry_initial = "20ms"
retry_max = "100ms"

[[sink.webhook]]
name = "ops"
url = %q
hmac_secret = %q
timeout = "2s"
rate_limit = { rate = "off" }
dedup = { window = "1h" }
`, spool, rcv.URL(), secret)
	c, err := Parse(file, []byte(toml))
	if err != nil {
		t.Fatal(err)
	}

	start := func() *notify.Pipeline {
		t.Helper()
		p, err := notify.New(c.Notify(), notify.Env{Host: "web-1"})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	handled := 0
	burst := func(p *notify.Pipeline, round int) {
		for i := range 30 {
			ev := event.Synthetic(time.Now(), "web-1")
			ev.Process.PID = uint32(1000*round + i)
			ev.Process.TID = ev.Process.PID
			// Ten programs, each failing three times: ten first occurrences
			// and, at close, ten digests of two.
			ev.Binary.Path = fmt.Sprintf("/srv/app/job%d-%d", round, i%10)
			p.Handle(&ev)
			handled++
		}
	}

	p := start()
	burst(p, 1)
	poll.Until(t, "spooling", func() bool { return p.Stats().Sinks[0].SpoolEntries > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(rcv.Events()); got != 0 {
		t.Fatalf("receiver was down but got %d events", got)
	}

	// Restart: the receiver comes back, the spool is replayed first.
	if err := rcv.Restart(); err != nil {
		t.Fatal(err)
	}
	p = start()
	burst(p, 2)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel2()
	poll.Until(t, "replay", func() bool { return p.Stats().Sinks[0].SpoolEntries == 0 })
	if err := p.Close(ctx2); err != nil {
		t.Fatal(err)
	}
	var total uint64
	for _, ev := range rcv.Events() {
		n := ev.Count
		if n == 0 {
			n = 1
		}
		total += n
	}
	if total != uint64(handled) {
		t.Errorf("receiver holds %d failures in %d notifications, want %d", total, len(rcv.Events()), handled)
	}
	for _, r := range rcv.Requests() {
		if r.Problem != "" && r.Status != 503 {
			t.Errorf("receiver rejected a request: %d %s", r.Status, r.Problem)
		}
	}
	if len(rcv.Events()) != 40 {
		t.Errorf("%d notifications, want 40 (20 first occurrences, 20 digests)", len(rcv.Events()))
	}
}
