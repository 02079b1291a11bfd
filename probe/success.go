// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"bytes"
	"os"
)

// successName is the program a process runs right after a successful
// exec, as the kernel named it from the program's file name: the comm of
// pid, read when the marker is taken. The marker carries no name, so a
// program that has exited and been reaped by then (a short-lived one
// behind a ring of records to enrich) leaves it empty, and one that
// renamed itself or exec'd again gives another name.
func (en *enricher) successName(pid uint32) string {
	b, err := os.ReadFile(en.proc(pid, "comm"))
	if err != nil {
		return ""
	}
	return string(bytes.TrimSuffix(b, []byte("\n")))
}
