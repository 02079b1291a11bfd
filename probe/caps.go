// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Capability numbers from linux/capability.h. CAP_BPF and CAP_PERFMON
// appeared in 5.8; on older kernels only CAP_SYS_ADMIN grants what they do.
const (
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
)

// effectiveCaps returns the calling thread's effective capability set as a
// bit mask indexed by capability number.
func effectiveCaps() (uint64, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	// Version 3 transfers two 32-bit halves of each set.
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return 0, fmt.Errorf("read effective capabilities: %w", err)
	}
	return uint64(data[1].Effective)<<32 | uint64(data[0].Effective), nil
}

// missingCaps returns the capabilities eff lacks for loading and attaching
// the probe, in the words the error shows, or "" when nothing is missing.
// The kernel accepts CAP_SYS_ADMIN in place of CAP_BPF and of CAP_PERFMON,
// so either form is enough; the daemon's euid does not matter.
func missingCaps(eff uint64) string {
	has := func(c uint) bool { return eff&(1<<c) != 0 }
	if has(capSysAdmin) {
		return ""
	}
	var lack []string
	if !has(capBPF) {
		lack = append(lack, "CAP_BPF")
	}
	if !has(capPerfmon) {
		lack = append(lack, "CAP_PERFMON")
	}
	if len(lack) == 0 {
		return ""
	}
	return strings.Join(lack, " and ") + " (or CAP_SYS_ADMIN)"
}

// checkCaps is the capability part of Prerequisites.
func checkCaps() error {
	eff, err := effectiveCaps()
	if err != nil {
		return err
	}
	if m := missingCaps(eff); m != "" {
		return fmt.Errorf("needs %s, which this process lacks: run as root or grant them (AmbientCapabilities= in a unit)", m)
	}
	return nil
}
