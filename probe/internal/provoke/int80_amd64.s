// SPDX-License-Identifier: Apache-2.0

#include "textflag.h"

// func int80(nr, a1, a2, a3, a4, a5 uintptr) uintptr
//
// A 32-bit system call from 64-bit code: the kernel takes it through its
// ia32 entry, with the compat syscall table and 32-bit arguments.
TEXT ·int80(SB), NOSPLIT, $0-56
	MOVQ nr+0(FP), AX
	MOVQ a1+8(FP), BX
	MOVQ a2+16(FP), CX
	MOVQ a3+24(FP), DX
	MOVQ a4+32(FP), SI
	MOVQ a5+40(FP), DI
	INT  $0x80
	MOVQ AX, ret+48(FP)
	RET
