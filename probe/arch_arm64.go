// SPDX-License-Identifier: Apache-2.0

package probe

// syscallPrefix names the syscall functions' symbols (fentry's verdict).
const syscallPrefix = "__arm64_sys_"

// compatHooks: AArch32 execs are not hooked on arm64 (README, "Kernel
// modes"); the native syscall tracepoints see every AArch64 exec.
var compatHooks []hookSpec

// compatRawTracepoint: none on arm64.
const compatRawTracepoint = ""
