// SPDX-License-Identifier: Apache-2.0

package probe

// bpf/headers holds libbpf's headers (bpf/headers/LIBBPF_VERSION): generation needs clang only.

//go:generate go tool bpf2go -cc clang-16 -strip llvm-strip-16 -cflags "-O2 -g -Wall -mcpu=v3" -target amd64,arm64 -type ef_header -type ef_event -type ef_kind -type ef_syscall -type ef_hook -type ef_flag -type ef_lost -go-package probe execfaild ../bpf/execfaild.bpf.c -- -I../bpf -I../bpf/headers

// The build for kernels 5.8 to 5.16 (EF_LEGACY in bpf/execfaild.bpf.c).
//go:generate go tool bpf2go -cc clang-16 -strip llvm-strip-16 -cflags "-O2 -g -Wall -mcpu=v3 -DEF_LEGACY" -target amd64,arm64 -go-package probe execfaildlegacy ../bpf/execfaild.bpf.c -- -I../bpf -I../bpf/headers

// The legacy build sending through a perf event array, for kernels without
// a BPF ring buffer (before 5.8) or when [probe] transport asks for it.
//go:generate go tool bpf2go -cc clang-16 -strip llvm-strip-16 -cflags "-O2 -g -Wall -mcpu=v3 -DEF_LEGACY -DEF_PERFBUF" -target amd64,arm64 -go-package probe execfaildperf ../bpf/execfaild.bpf.c -- -I../bpf -I../bpf/headers
