/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * What vmlinux.h (generated from an x86_64 kernel) lacks for the other
 * targets. The layouts are relocated against the running kernel's BTF.
 */
#ifndef EXECFAILD_ARCH_H
#define EXECFAILD_ARCH_H

#if defined(__TARGET_ARCH_arm64)
/* arm64's pt_regs starts with this (uapi); bpf_tracing.h reads through it. */
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
} __attribute__((preserve_access_index));
#endif

#endif
