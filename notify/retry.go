// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"errors"
	"math"
	"time"
)

// The retry policy lives in this file, and only here: which waits a failed
// delivery gets, and how far a destination's Retry-After is believed.
//
// Two loops carry it out. Inside one Send a sink may try again at once for
// a moment's trouble (a reset connection, a 502 from a restarting proxy):
// QuickRetry says how often and how long it may wait, never past its
// Budget, so one Send never holds the worker for long. Everything beyond
// that is the worker's: it spools the notification and retries with a
// backoff between [spool] retry_initial and retry_max, believing a
// Retry-After up to MaxRetryAfter. Whether a failure is worth a retry at
// all is the sink's verdict, carried by its error (Permanent, Unauthorized;
// for HTTP destinations httpsink.Classify judges every status).

// MaxRetryAfter caps a destination's Retry-After so a hostile or broken
// server cannot park a sink for days. It is the one cap: a sink reports a
// longer request as this much, and the worker waits this much.
const MaxRetryAfter = 15 * time.Minute

// QuickRetry is the part of the policy a Send carries out itself.
type QuickRetry struct {
	// Retries after the first attempt within one Send.
	Retries int
	// WaitMin doubles per retry up to WaitMax when the destination did not
	// say how long to wait.
	WaitMin, WaitMax time.Duration
	// Budget is the longest single wait a Send takes on. A destination
	// asking for more ends the Send with a retryable error that carries
	// the delay, and the worker waits it out from the spool.
	Budget time.Duration
}

// DefaultQuickRetry is what the HTTP sinks use.
var DefaultQuickRetry = QuickRetry{Retries: 2, WaitMin: 500 * time.Millisecond, WaitMax: 4 * time.Second, Budget: 10 * time.Second}

// Wait says whether Send makes quick retry number attempt (1 for the
// first retry) and how long it waits before it. asked is the
// destination's Retry-After, when it sent one (ok).
func (q QuickRetry) Wait(attempt int, asked time.Duration, ok bool) (time.Duration, bool) {
	if attempt > q.Retries {
		return 0, false
	}
	if ok {
		if asked > q.Budget {
			return 0, false
		}
		return asked, true
	}
	d := float64(q.WaitMin) * math.Pow(2, float64(attempt-1))
	if d > float64(q.WaitMax) {
		return q.WaitMax, true
	}
	return time.Duration(d), true
}

// CapRetryAfter is the delay the worker will honour for a destination's
// Retry-After of d.
func CapRetryAfter(d time.Duration) time.Duration { return min(max(d, 0), MaxRetryAfter) }

// retryAfter is the delay a sink's error says the destination asked for
// (an HTTP Retry-After), capped, or zero.
func retryAfter(err error) time.Duration {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		return CapRetryAfter(ra.RetryAfter())
	}
	return 0
}
