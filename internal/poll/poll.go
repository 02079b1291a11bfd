// SPDX-License-Identifier: Apache-2.0

// Package poll waits in tests for what another goroutine or process does.
package poll

import (
	"testing"
	"time"
)

// limit is how long Until waits before it fails the test: long enough to
// mean "never" on a loaded machine, short enough not to hang a run.
const limit = 30 * time.Second

// Until returns once cond holds; what names it in the failure when it does
// not hold within a generous limit.
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
