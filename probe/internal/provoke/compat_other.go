// SPDX-License-Identifier: Apache-2.0

//go:build !amd64

package provoke

import (
	"errors"
	"syscall"
)

// CompatSupported: no 32-bit syscall ABI is provoked on this architecture.
const CompatSupported = false

func compatExec(bool, int, string, []string, []string, uint32) (syscall.Errno, error) {
	return 0, errors.New("compat execs are provoked on amd64 only")
}
