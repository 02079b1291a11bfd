// SPDX-License-Identifier: Apache-2.0

package event

import "os"

// LocalHost is the host name events and notifications carry unless told
// otherwise: the kernel's host name, or "localhost" when it cannot be read.
func LocalHost() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}
