// SPDX-License-Identifier: Apache-2.0

// Package canary is the kernel matrix's self-check: its tests prove that a
// guest booted by vmtest runs as root on the requested kernel series, has
// BTF, and can load, attach and fire tracepoint, kprobe and fentry programs.
// When the canary passes and a probe test fails, the probe is at fault, not
// the harness.
//
// The tests run only when EXECFAILD_TEST_MODE is set (vmtest/matrix.sh sets
// it); EXECFAILD_TEST_VM=1 says the kernel is a test guest where every hook
// type must work, EXECFAILD_TEST_KERNEL names the expected series, and
// EXECFAILD_TEST_NO_FENTRY (set with a reason) says the kernel cannot attach
// fentry programs to kernel functions, so the attach must fail with "not
// supported".
package canary
