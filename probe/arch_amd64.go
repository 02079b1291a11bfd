// SPDX-License-Identifier: Apache-2.0

package probe

// syscallPrefix names the syscall functions' symbols (fentry's verdict).
const syscallPrefix = "__x64_sys_"

// compatHooks: the syscalls/sys_exit_* tracepoints skip 32-bit syscalls,
// so the compat entry points' returns give the verdict for those. Absent on
// a kernel without IA32 emulation, where there is nothing to see. The
// default build only.
var compatHooks = []hookSpec{
	{name: "compat", fn: "__ia32_compat_sys_execve", fentry: execfaildProgFexitCompatExecve, kprobe: execfaildProgKretprobeCompatExecve, kprobeRet: true, exit: true},
	{name: "compat", fn: "__ia32_compat_sys_execveat", fentry: execfaildProgFexitCompatExecveat, kprobe: execfaildProgKretprobeCompatExecveat, kprobeRet: true, exit: true},
}

// compatRawTracepoint gives tracepoint mode the compat verdict: the raw
// sys_exit tracepoint fires for every syscall of either ABI, and the
// program keeps only 32-bit execve/execveat. The default build only.
const compatRawTracepoint = execfaildProgRawExitCompat
