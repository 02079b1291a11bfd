/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Layout shared by execfaild.bpf.c and the Go decoder (probe/decode.go,
 * generated binding execfaildEfHeader). A record on the ring buffer is one
 * struct ef_header followed by `data_len` bytes of NUL-terminated strings,
 * in this order:
 *
 *   path          the filename as the caller gave it          (1 string)
 *   interp        the interpreter exec tried to open          (0/1 string)
 *   head          the program's first bytes, as the loaders   (head_len raw
 *                 saw them (bprm->buf)                         bytes, no NUL)
 *   binary path   components of the opened file, leaf first   (bin_ncomp)
 *   stdin path    components of fd 0's file, leaf first       (stdin_ncomp)
 *   cwd           components of the working directory         (cwd_ncomp)
 *   exe           components of the caller's executable       (exe_ncomp)
 *   argv                                                      (argc)
 *   envp                                                      (envc)
 *
 * Paths are sent as components rather than joined in the kernel: the walk
 * goes from the file up to the root, and appending forward keeps the
 * verifier's bounds simple; userspace reverses them.
 */
#ifndef EXECFAILD_EVENT_H
#define EXECFAILD_EVENT_H

/* Room for the variable part; a record that would not fit is cut and marked. */
#define EF_DATA_SIZE 24576
/* Per-string caps. EF_ARG_LEN_CAP bounds probe.Config.MaxArgLen. */
#define EF_PATH_CAP 4096
#define EF_NAME_CAP 256
#define EF_INTERP_CAP 256
/* The program's first bytes kept: an ELF header (64 bytes) or a #! line's start. */
#define EF_HEAD_CAP 64
#define EF_ARG_LEN_CAP 4096
/* Caps for probe.Config.MaxArgs / MaxEnv (bounded loops for the verifier). */
#define EF_ARGS_CAP 64
/* Deepest path walked, counting mount crossings. */
#define EF_PATH_DEPTH 48
/* Bytes kept per thread for the binary path between hook and syscall exit. */
#define EF_BINPATH_CAP 2048

enum ef_kind {
	EF_KIND_FAILURE = 1,
	EF_KIND_SUCCESS = 2,
	/* Repeats of a failure folded in the kernel: rid, count, first..last. */
	EF_KIND_REPEATS = 3,
	/* A folded failure's count went from 0 to 1: a flush is due. */
	EF_KIND_FOLD_PENDING = 4,
};

enum ef_syscall {
	EF_SYSCALL_EXECVE = 0,
	EF_SYSCALL_EXECVEAT = 1,
	EF_SYSCALL_KERNEL = 2,
};

/* Hooks inside exec that fired for this attempt (ef_header.hooks). */
enum ef_hook {
	EF_HOOK_OPEN = 1 << 0,   /* do_open_execat returned a file: the binary was opened */
	EF_HOOK_CREDS = 1 << 1,  /* security_bprm_creds_for_exec / exec_binprm entered */
	EF_HOOK_LOADER = 1 << 2, /* security_bprm_check: a binary format handler ran */
	EF_HOOK_INTERP = 1 << 3, /* open_exec: a loader tried to open an interpreter */
};

/* Indexes of the per-CPU `lost` counters: what the ring buffer could not take. */
enum ef_lost {
	EF_LOST_FAILURE = 0, /* a failure record: the failure itself is missing */
	EF_LOST_MARKER = 1,  /* a PATH-search success marker */
	EF_LOST_NR = 2,
};

/* ef_header.flags */
enum ef_flag {
	EF_F_ARGS_TRUNC = 1 << 0,
	EF_F_ENV_TRUNC = 1 << 1,
	EF_F_HAS_BINARY = 1 << 2,
	EF_F_HAS_INTERP = 1 << 3,
	EF_F_STDIN_CLOSED = 1 << 4,
	EF_F_HAS_STDIN = 1 << 5,
	EF_F_HAS_LOGINUID = 1 << 6,
	EF_F_BIN_PATH_TRUNC = 1 << 7,
	EF_F_STDIN_PATH_TRUNC = 1 << 8,
	EF_F_PATH_TRUNC = 1 << 9,
	EF_F_COMPAT = 1 << 10, /* a 32-bit (ia32) syscall: compat pointers, compat numbers */
	EF_F_HAS_CWD = 1 << 11,
	EF_F_CWD_TRUNC = 1 << 12,
	EF_F_HAS_EXE = 1 << 13,
	EF_F_EXE_TRUNC = 1 << 14,
	EF_F_PATH_KERNEL = 1 << 15, /* path is the kernel's copy, not re-read from the caller */
	EF_F_FOLD_GONE = 1 << 17,   /* repeats record: the kernel forgot this rid */
	EF_F_HAS_HEAD = 1 << 18,    /* head holds the program's first bytes (head_len may be 0: empty file) */
	EF_F_PENDING_ENOENT = 1 << 16, /* per-thread state only */
};

struct ef_header {
	__u8 kind;
	__u8 syscall;
	__u16 hooks;
	__u32 flags;
	__s32 ret;
	__s32 dirfd;
	__u32 at_flags;
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u32 euid;
	__u32 loginuid;
	__u64 boot_ns;
	__u64 cgroup_id;
	/* binary: kernel dev_t (MAJOR << 20 | MINOR) */
	__u64 bin_ino;
	__u64 bin_ctime_ns;
	__u32 bin_dev;
	__u32 bin_mode;
	__u64 stdin_ino;
	__u32 stdin_dev;
	__u32 stdin_mode;
	__u16 path_len;   /* bytes incl. NUL, 0 when absent */
	__u16 interp_len; /* bytes incl. NUL, 0 when absent */
	__u16 bin_path_len;
	__u16 bin_ncomp;
	__u16 stdin_path_len;
	__u16 stdin_ncomp;
	__u16 cwd_path_len;
	__u16 cwd_ncomp;
	__u16 exe_path_len;
	__u16 exe_ncomp;
	__u16 head_len; /* bytes of head in the data, at most EF_HEAD_CAP */
	__u8 loaders;   /* security_bprm_check calls: 1 + interpreters opened */
	__u8 pad0;
	/* Folding: a failure record whose repeats the kernel counts carries a
	 * non-zero rid; a repeats record carries the rid, how many repeats it
	 * stands for and the first of them (boot_ns is the last). */
	__u64 rid;
	__u64 repeats;
	__u64 repeats_first_ns;
	__u32 mnt_ns;   /* inode number of the caller's mount namespace */
	__u32 root_dev; /* the caller's root directory (kernel dev_t, inode): what */
	__u64 root_ino; /* its cwd and exe are relative to, as it sees them */
	/* E2BIG only: argv and envp as exec counted them, every string with its
	 * NUL, when the count finished (0: not counted). */
	__u64 arg_bytes;
	__u32 arg_strings;
	__u32 arg_longest;
	__u16 argc;
	__u16 envc;
	__u32 args_len;
	__u32 env_len;
	__u32 data_len;
	char comm[16];
};

#endif
