// SPDX-License-Identifier: Apache-2.0

package provoke

import "unsafe"

func addr32(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }
