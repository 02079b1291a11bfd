// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"math"
	"time"
)

// bucket is a token bucket. A nil *bucket never limits.
type bucket struct {
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(r Rate, burst int, now time.Time) *bucket {
	if r <= 0 || burst <= 0 {
		return nil
	}
	return &bucket{rate: float64(r), burst: float64(burst), tokens: float64(burst), last: now}
}

func (b *bucket) refill(now time.Time) {
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(b.burst, b.tokens+dt*b.rate)
		b.last = now
	}
}

// ready tells whether a token is available at now.
func (b *bucket) ready(now time.Time) bool {
	if b == nil {
		return true
	}
	b.refill(now)
	return b.tokens >= 1
}

func (b *bucket) take() {
	if b != nil {
		b.tokens--
	}
}

func (b *bucket) refund() {
	if b != nil {
		b.tokens = min(b.burst, b.tokens+1)
	}
}

// readyAt is when a token will be available (now if one is).
func (b *bucket) readyAt(now time.Time) time.Time {
	if b == nil {
		return now
	}
	b.refill(now)
	if b.tokens >= 1 {
		return now
	}
	// Rounded up: a wake-up a nanosecond early would find no token yet.
	return now.Add(time.Duration(math.Ceil((1 - b.tokens) / b.rate * float64(time.Second))))
}
