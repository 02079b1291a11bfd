// SPDX-License-Identifier: Apache-2.0

// Package field is the one error type for a configuration setting that
// failed validation. It imports nothing of this module, so every validator
// can use it: the probe, which notify depends on, as well as notify and its
// sinks. The config loader reads Key to find the setting's line in the file
// instead of parsing it back out of a message.
package field

import "fmt"

// Error is a validation error about one configuration key. Key is relative
// to the table the validator was given ("url", "dedup.window"), or rooted
// at the file when the validator owns a whole section ("probe.mode").
// Error prints "key: message".
type Error struct {
	Key string
	Err error
}

func (e *Error) Error() string { return e.Key + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error for key.
func Errorf(key, format string, args ...any) error {
	return &Error{Key: key, Err: fmt.Errorf(format, args...)}
}
