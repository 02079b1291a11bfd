// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * execfaild: report failed program executions.
 *
 * The verdict comes from the syscall exit tracepoints, which see every
 * failure of execve/execveat whatever stage it happened at. On failure the
 * caller's memory is intact, so the filename, argv and envp are read there
 * from the saved user registers: no entry hook, no pairing. Hooks inside
 * exec (fentry or kprobe, whichever the kernel allows) only add what the
 * syscall exit can no longer see - the opened binary and the interpreter -
 * into a per-thread map that the exit consumes. Kernel-initiated execs never
 * reach a syscall exit; their failures are caught at kernel_execve's return.
 */
#include "vmlinux.h"
#include "arch.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "event.h"

/*
 * The kernel lets a program call GPL-only helpers, such as the
 * bpf_probe_read_kernel/_user reads below, only when the license it
 * declares is GPL-compatible. "Dual BSD/GPL" is the kernel's name for
 * this file's GPL-2.0-only OR BSD-2-Clause.
 */
char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define ENOENT 2
#define E2BIG 7
#define AT_FDCWD -100

/*
 * Two builds of this file. The default one uses what 5.17 brought
 * (bpf_loop, bpf_task_pt_regs, bpf_get_func_ret) and 5.14's syscall
 * programs for folding. EF_LEGACY (the execfaildlegacy objects) runs on
 * 5.8 to 5.16: loops are bounded loops the verifier walks, the verdict and
 * the syscall's registers come from the raw sys_exit tracepoint, fexit
 * programs read their typed arguments, and nothing is folded. EF_PERFBUF
 * (the execfaildperf objects, a legacy build) sends records through a perf
 * event array, for kernels before 5.8, which have no BPF ring buffer.
 */
#if defined(EF_PERFBUF) && !defined(EF_LEGACY)
#error "EF_PERFBUF is a legacy build: folding needs the ring buffer"
#endif
#ifdef EF_LEGACY
#define EF_LOOP(n, fn)                                                                                  \
	do {                                                                                            \
		for (__u32 __i = 0; __i < (n); __i++)                                                    \
			if (fn(__i, 0))                                                                \
				break;                                                                 \
	} while (0)
#define EF_CALLBACK static __always_inline long
#define current_task() ((struct task_struct *)bpf_get_current_task())
#define TYPED_READ(...) BPF_CORE_READ(__VA_ARGS__)
#define SYSCALL_ARG(n, regs) PT_REGS_PARM##n##_CORE_SYSCALL(regs)
#define REG_READ(regs, r) BPF_CORE_READ(regs, r)
#else
#define EF_LOOP(n, fn) bpf_loop(n, fn, 0, 0)
#define EF_CALLBACK static long
#define current_task() bpf_get_current_task_btf()
/*
 * current_task() and bpf_task_pt_regs() give typed pointers here: a chain
 * of fields read through them is a plain load the verifier guards, not a
 * bpf_probe_read_kernel call per pointer (~30 ns each), which is most of
 * what a failure's hook costs. Only for pointers reached from those two;
 * pointers kept in maps are plain numbers and are read with BPF_CORE_READ.
 */
#define TYPED_READ(...) ___arrow(__VA_ARGS__)
#define SYSCALL_ARG(n, regs) PT_REGS_PARM##n##_SYSCALL(regs)
#define REG_READ(regs, r) ((regs)->r)
#endif

/*
 * The records' clock: CLOCK_BOOTTIME, but CLOCK_MONOTONIC in the perf
 * build, made for kernels before 5.8, which lack bpf_ktime_get_boot_ns;
 * userspace converts either with the matching base.
 */
#ifdef EF_PERFBUF
#define record_ns() bpf_ktime_get_ns()
#else
#define record_ns() bpf_ktime_get_boot_ns()
#endif

/* Set from probe.Config before load; the verifier prunes dead branches. */
const volatile __u32 max_args = 32;
const volatile __u32 max_env = 32;
const volatile __u32 max_arg_len = 256;
const volatile __u8 capture_env = 1;
/* The do_open_execat entry hook is attached (fentry, kprobe): kpaths is fed. */
const volatile __u8 kernel_path = 0;
/* Count repeats of a failure in the kernel (probe.Config.FoldRepeats). */
const volatile __u8 fold = 0;

/*
 * What a thread learned inside exec, consumed at the syscall exit. Keyed by
 * the task_struct, not the tid: a non-leader thread that execs takes the
 * leader's pid in de_thread, between the hooks and the syscall exit, and a
 * tid-keyed entry would then be missed at the exit and left for whichever
 * thread reuses that tid next.
 */
struct ef_task {
	__u32 flags;
	__u32 tgid; /* of the creator: a reused task_struct belongs to another process */
	__u32 tid;  /* the tid the failures were reported with, for the success marker */
	__u16 hooks;
	__u16 interp_len;
	__u16 bin_path_len;
	__u16 bin_ncomp;
	__u32 bin_dev;
	__u32 bin_mode;
	__u16 head_len;
	__u8 loaders;
	__u8 pad;
	__u64 bin_ino;
	__u64 bin_ctime_ns;
	char interp[EF_INTERP_CAP];
	char head[EF_HEAD_CAP];
	char bin_path[EF_BINPATH_CAP];
};

struct ef_event {
	struct ef_header h;
	__u8 data[EF_DATA_SIZE];
};

struct kexec_args {
	__u64 filename;
	__u64 argv;
	__u64 envp;
};

#ifdef EF_PERFBUF
/* One buffer per CPU, sized and opened by userspace (probe.Config). */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");
#else
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22); /* resized from probe.Config */
} events SEC(".maps");
#endif

/*
 * LRU so that a thread killed inside exec (no syscall exit) cannot pin an
 * entry forever.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 2048);
	__type(key, __u64);
	__type(value, struct ef_task);
} tasks SEC(".maps");

/* Never written: the zeroed value new tasks entries are created from. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ef_task);
} zero_task SEC(".maps");

/* The event is far larger than the 512-byte stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ef_event);
} scratch SEC(".maps");

/*
 * Records the ring buffer could not take; never lose silently. Userspace
 * reads them for every PATH search it concludes: in the default build they
 * are one shared array it maps, read without a system call (mmapable
 * arrays came with 5.5); the legacy builds keep a per-CPU array.
 */
struct {
#ifdef EF_LEGACY
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
#else
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
#endif
	__uint(max_entries, EF_LOST_NR);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/*
 * The kernel's own copy of the path (struct filename), taken when exec
 * opens the binary: what the syscall exit would read from the caller's
 * memory may have been rewritten by a sibling thread meanwhile. Separate
 * from tasks, which must stay small: only execs in flight have an entry.
 */
struct kpath {
	char name[EF_PATH_CAP];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 512);
	__type(key, __u64);
	__type(value, struct kpath);
} kpaths SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kpath);
} kpath_scratch SEC(".maps");

/* kprobe mode: kernel_execve's arguments, from entry to return. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct kexec_args);
} kexec SEC(".maps");

/* The inode ctime moved: i_ctime (<6.6), __i_ctime (6.6-6.10), split (6.11+). */
struct inode___ctime_ts {
	struct timespec64 i_ctime;
} __attribute__((preserve_access_index));

struct inode___ctime_dunder {
	struct timespec64 __i_ctime;
} __attribute__((preserve_access_index));

struct inode___ctime_split {
	time64_t i_ctime_sec;
	u32 i_ctime_nsec;
} __attribute__((preserve_access_index));

static __always_inline __u64 inode_ctime_ns(struct inode *inode)
{
	__s64 sec = 0;
	__u64 nsec = 0;

	if (bpf_core_field_exists(((struct inode___ctime_split *)0)->i_ctime_sec)) {
		struct inode___ctime_split *i = (void *)inode;
		sec = BPF_CORE_READ(i, i_ctime_sec);
		/* 6.13+ keeps a "queried" flag in the top bits of the nanoseconds. */
		nsec = BPF_CORE_READ(i, i_ctime_nsec) & ((1u << 30) - 1);
	} else if (bpf_core_field_exists(((struct inode___ctime_dunder *)0)->__i_ctime)) {
		struct inode___ctime_dunder *i = (void *)inode;
		sec = BPF_CORE_READ(i, __i_ctime.tv_sec);
		nsec = BPF_CORE_READ(i, __i_ctime.tv_nsec);
	} else if (bpf_core_field_exists(((struct inode___ctime_ts *)0)->i_ctime)) {
		struct inode___ctime_ts *i = (void *)inode;
		sec = BPF_CORE_READ(i, i_ctime.tv_sec);
		nsec = BPF_CORE_READ(i, i_ctime.tv_nsec);
	}
	return (__u64)sec * 1000000000ull + nsec;
}

/*
 * Path walks and argv copies run under bpf_loop. Their state lives in a
 * per-CPU map, not in a stack context: values loaded from a map are
 * unknown to the verifier, so it checks a callback a couple of times
 * instead of once per distinct offset - hundreds of thousands of
 * instructions, minutes under emulation. Every bound is therefore checked
 * explicitly in the callback.
 */
enum walk_dst {
	WALK_EVENT = 0, /* scratch event data (stdin path) */
	WALK_TASK = 1,  /* the thread's ef_task.bin_path */
};

struct walk_ctx {
	__u64 vfsmnt;
	__u64 dentry;
	__u64 root_mnt; /* stop here, as d_path stops at a process's root; */
	__u64 root;     /* 0: walk to the top of the mount tree */
	__u64 task;
	__u32 off;
	__u16 ncomp;
	__u8 dst;
	__u8 trunc;
	__u8 done;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct walk_ctx);
} walk_state SEC(".maps");

static __always_inline __u8 *walk_buf(struct walk_ctx *c, __u32 *limit)
{
	__u32 zero = 0;

	if (c->dst == WALK_TASK) {
		struct ef_task *st = bpf_map_lookup_elem(&tasks, &c->task);

		*limit = EF_BINPATH_CAP;
		return st ? (__u8 *)st->bin_path : 0;
	}
	struct ef_event *e = bpf_map_lookup_elem(&scratch, &zero);

	*limit = EF_DATA_SIZE;
	return e ? e->data : 0;
}

/*
 * One step from a dentry towards the root of the mount namespace, leaf
 * first. At a mount root the walk continues at the mountpoint in the parent
 * mount. A pseudo file (pipe, socket) has a dentry that is its own parent
 * without being a mount root: its name is kept and the walk stops.
 */
EF_CALLBACK walk_step(__u64 i, void *unused)
{
	__u32 zero = 0;
	struct walk_ctx *c = bpf_map_lookup_elem(&walk_state, &zero);

	if (!c)
		return 1;
	struct vfsmount *vfsmnt = (void *)c->vfsmnt;
	struct dentry *dentry = (void *)c->dentry;

	if (c->root && c->dentry == c->root && c->vfsmnt == c->root_mnt) {
		c->done = 1;
		return 1;
	}
	struct mount *mnt = (void *)vfsmnt - bpf_core_field_offset(struct mount, mnt);
	struct dentry *root = BPF_CORE_READ(vfsmnt, mnt_root);
	struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
	bool last = false;

	if (dentry == root) {
		struct mount *up = BPF_CORE_READ(mnt, mnt_parent);

		if (up == mnt) {
			c->done = 1;
			return 1;
		}
		c->dentry = (__u64)BPF_CORE_READ(mnt, mnt_mountpoint);
		c->vfsmnt = (__u64)((void *)up + bpf_core_field_offset(struct mount, mnt));
		return 0;
	}
	if (dentry == parent)
		last = true;

	__u32 limit = 0;
	__u8 *base = walk_buf(c, &limit);
	__u32 off = c->off;

	if (!base)
		return 1;
	if (limit == EF_BINPATH_CAP) {
		if (off > EF_BINPATH_CAP - EF_NAME_CAP) {
			c->trunc = 1;
			return 1;
		}
	} else if (off > EF_DATA_SIZE - EF_NAME_CAP) {
		c->trunc = 1;
		return 1;
	}
	const unsigned char *name = BPF_CORE_READ(dentry, d_name.name);
	long n = bpf_probe_read_kernel_str(base + off, EF_NAME_CAP, name);

	if (n <= 0)
		return 1;
	c->off = off + n;
	c->ncomp++;
	if (last) {
		c->done = 1;
		return 1;
	}
	c->dentry = (__u64)parent;
	return 0;
}

static __always_inline __u32 walk_path_to(struct vfsmount *vfsmnt, struct dentry *dentry, struct path *root,
					  __u8 dst, __u64 task, __u32 off, __u16 *ncomp, bool *trunc)
{
	__u32 zero = 0;
	struct walk_ctx *c = bpf_map_lookup_elem(&walk_state, &zero);

	if (!c) {
		*trunc = true;
		return off;
	}
	c->vfsmnt = (__u64)vfsmnt;
	c->dentry = (__u64)dentry;
	c->root_mnt = root ? (__u64)BPF_CORE_READ(root, mnt) : 0;
	c->root = root ? (__u64)BPF_CORE_READ(root, dentry) : 0;
	c->off = off;
	c->task = task;
	c->dst = dst;
	c->ncomp = 0;
	c->trunc = 0;
	c->done = 0;
	EF_LOOP(EF_PATH_DEPTH, walk_step);
	*ncomp = c->ncomp;
	*trunc = c->trunc || !c->done;
	return c->off;
}

static __always_inline __u64 task_key(void)
{
	return (__u64)bpf_get_current_task();
}

/*
 * The current thread's entry, or none. An entry whose creator was another
 * process is stale (its task_struct was freed inside exec and reused): it
 * is dropped, never read.
 */
static __always_inline __u32 walk_path(struct vfsmount *vfsmnt, struct dentry *dentry, __u8 dst,
				       __u64 task, __u32 off, __u16 *ncomp, bool *trunc)
{
	return walk_path_to(vfsmnt, dentry, 0, dst, task, off, ncomp, trunc);
}

static __always_inline struct ef_task *task_lookup(__u64 key)
{
	struct ef_task *st = bpf_map_lookup_elem(&tasks, &key);

	if (st && st->tgid != (__u32)(bpf_get_current_pid_tgid() >> 32)) {
		bpf_map_delete_elem(&tasks, &key);
		return 0;
	}
	return st;
}

static __always_inline struct ef_task *task_state(__u64 key)
{
	struct ef_task *st = task_lookup(key);
	__u32 zero = 0;

	if (st)
		return st;
	struct ef_task *z = bpf_map_lookup_elem(&zero_task, &zero);

	if (!z)
		return 0;
	bpf_map_update_elem(&tasks, &key, z, BPF_NOEXIST);
	st = bpf_map_lookup_elem(&tasks, &key);
	if (st) {
		__u64 pid_tgid = bpf_get_current_pid_tgid();

		st->tgid = pid_tgid >> 32;
		st->tid = (__u32)pid_tgid;
	}
	return st;
}

static __always_inline void record_binary(struct ef_task *st, __u64 key, struct file *file)
{
	if (!file || (st->flags & EF_F_HAS_BINARY))
		return;
	struct inode *inode = BPF_CORE_READ(file, f_inode);

	st->bin_ino = BPF_CORE_READ(inode, i_ino);
	st->bin_dev = BPF_CORE_READ(inode, i_sb, s_dev);
	st->bin_mode = BPF_CORE_READ(inode, i_mode);
	st->bin_ctime_ns = inode_ctime_ns(inode);

	bool trunc = false;
	__u16 ncomp = 0;
	__u32 len = walk_path(BPF_CORE_READ(file, f_path.mnt), BPF_CORE_READ(file, f_path.dentry),
			      WALK_TASK, key, 0, &ncomp, &trunc);

	st->bin_path_len = len;
	st->bin_ncomp = ncomp;
	st->flags |= EF_F_HAS_BINARY;
	if (trunc)
		st->flags |= EF_F_BIN_PATH_TRUNC;
}

static __always_inline void on_creds(struct linux_binprm *bprm)
{
	__u64 key = task_key();
	struct ef_task *st = task_state(key);

	if (!st)
		return;
	st->hooks |= EF_HOOK_CREDS;
	record_binary(st, key, BPF_CORE_READ(bprm, file));
}

/*
 * The program's first bytes as the binary format handlers see them: the
 * ELF header (machine, class) or the #! line tell why none took the file.
 * Only the first check's (the program's own); later ones are interpreters'.
 */
static __always_inline void record_head(struct ef_task *st, struct linux_binprm *bprm)
{
	__s64 size = BPF_CORE_READ(bprm, file, f_inode, i_size);

	if (bpf_core_read(st->head, sizeof(st->head), &bprm->buf) < 0)
		return;
	st->head_len = size < 0 ? 0 : size > EF_HEAD_CAP ? EF_HEAD_CAP : size;
	st->flags |= EF_F_HAS_HEAD;
}

static __always_inline void on_bprm_check(struct linux_binprm *bprm)
{
	__u64 key = task_key();
	struct ef_task *st = task_state(key);

	if (!st)
		return;
	st->hooks |= EF_HOOK_LOADER;
	if (st->loaders < 255)
		st->loaders++;
	if (st->loaders == 1)
		record_head(st, bprm);
	record_binary(st, key, BPF_CORE_READ(bprm, file));
}

/* do_open_execat returned: a file means the open succeeded. */
static __always_inline void on_open_ret(__u64 ret)
{
	/* IS_ERR: the top 4095 values are negative errnos. */
	if (!ret || ret >= (__u64)-4095)
		return;
	__u64 key = task_key();
	struct ef_task *st = task_state(key);

	if (!st)
		return;
	st->hooks |= EF_HOOK_OPEN;
	record_binary(st, key, (struct file *)ret);
}

/*
 * do_open_execat entered: the first call of an attempt opens the binary by
 * the path the caller gave (later ones are interpreters), so its name is
 * the kernel's copy of that path.
 */
static __always_inline void on_open_entry(struct filename *name)
{
	__u64 key = task_key();
	__u32 zero = 0;

	if (bpf_map_lookup_elem(&kpaths, &key))
		return;
	struct kpath *kp = bpf_map_lookup_elem(&kpath_scratch, &zero);

	if (!kp)
		return;
	if (bpf_probe_read_kernel_str(kp->name, sizeof(kp->name), BPF_CORE_READ(name, name)) <= 0)
		return;
	bpf_map_update_elem(&kpaths, &key, kp, BPF_NOEXIST);
}

/* open_exec is called by binary loaders only: its name is the interpreter. */
static __always_inline void on_open_exec(const char *name)
{
	struct ef_task *st = task_state(task_key());

	if (!st)
		return;
	st->hooks |= EF_HOOK_INTERP;
	/* The first interpreter is the one the binary named; later ones are
	 * the interpreter's own (ld.so for an ELF shell). */
	if (st->flags & EF_F_HAS_INTERP)
		return;
	long n = bpf_probe_read_kernel_str(st->interp, EF_INTERP_CAP, name);

	if (n > 0) {
		st->interp_len = n;
		st->flags |= EF_F_HAS_INTERP;
	}
}

static __always_inline long read_str(void *dst, __u32 size, const void *src, bool kernel)
{
	if (kernel)
		return bpf_probe_read_kernel_str(dst, size, src);
	return bpf_probe_read_user_str(dst, size, src);
}

/* Reads entry i of a pointer array: 8-byte pointers, or 4-byte compat ones. */
static __always_inline int read_ptr(const void **dst, const void *v, __u64 i, bool kernel, bool compat)
{
	if (compat) {
		__u32 p = 0;
		int err = bpf_probe_read_user(&p, sizeof(p), (const __u32 *)v + i);

		*dst = (const void *)(__u64)p;
		return err;
	}
	if (kernel)
		return bpf_probe_read_kernel(dst, sizeof(*dst), (const void *const *)v + i);
	return bpf_probe_read_user(dst, sizeof(*dst), (const void *const *)v + i);
}

struct strv_ctx {
	__u64 v;
	__u32 max;
	__u32 off;
	__u32 bytes;
	__u16 count;
	__u8 kernel;
	__u8 compat;
	__u8 trunc;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct strv_ctx);
} strv_state SEC(".maps");

/* Appends one string of a NULL-terminated pointer array. */
EF_CALLBACK strv_step(__u64 i, void *unused)
{
	__u32 zero = 0;
	struct strv_ctx *c = bpf_map_lookup_elem(&strv_state, &zero);
	const char *p = 0;
	__u32 len = max_arg_len;

	if (!c)
		return 1;
	/* A pointer or string that cannot be read ends the list early: say so. */
	if (read_ptr((const void **)&p, (const void *)c->v, i, c->kernel, c->compat) < 0) {
		c->trunc = 1;
		return 1;
	}
	if (!p)
		return 1;
	if (i >= c->max) {
		c->trunc = 1;
		return 1;
	}
	struct ef_event *e = bpf_map_lookup_elem(&scratch, &zero);
	__u32 off = c->off;

	if (!e)
		return 1;
	if (off > EF_DATA_SIZE - EF_ARG_LEN_CAP) {
		c->trunc = 1;
		return 1;
	}
	if (len > EF_ARG_LEN_CAP - 2)
		len = EF_ARG_LEN_CAP - 2;
	/*
	 * Room for one character more than kept (plus the NUL) tells a cut
	 * string from one of exactly the kept length.
	 */
	long n = read_str(e->data + off, len + 2, p, c->kernel);

	if (n < 0) {
		c->trunc = 1;
		return 1;
	}
	/* Before 6.16 an empty user string reads as 0 bytes, not 1. */
	if (n == 0) {
		e->data[off] = 0;
		n = 1;
	}
	if (n > len + 1) {
		/* off <= EF_DATA_SIZE - EF_ARG_LEN_CAP and len < EF_ARG_LEN_CAP, so
		 * the terminator always lands inside the string just read; the
		 * check is for the verifier, with no size of the record special. */
		__u32 end = off + len;

		if (end >= EF_DATA_SIZE)
			return 1;
		c->trunc = 1;
		e->data[end] = 0;
		n = len + 1;
	}
	c->off = off + n;
	c->bytes += n;
	c->count++;
	return 0;
}

#ifndef EF_LEGACY
/*
 * Measuring argv and envp after E2BIG, so the report can say which limit
 * they broke: one string's, or all together's. Every string is read in
 * chunks of a page into a scratch buffer; a chunk that fills it continues
 * one byte short of its end, so a string of exactly a chunk counts its NUL
 * once. Bounded: a count that would not finish is not reported.
 */
#define EF_MEASURE_STEPS (1 << 16)

struct measure_ctx {
	__u64 v;
	__u64 envp;
	__u64 ptr;
	__u64 bytes;
	__u32 idx;
	__u32 cur;
	__u32 strings;
	__u32 longest;
	__u8 compat;
	__u8 envp_next;
	__u8 done;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct measure_ctx);
} measure_state SEC(".maps");

/* The next string's pointer; false at the end of both arrays. */
static __always_inline bool measure_next(struct measure_ctx *c)
{
	const void *p = 0;

	for (int i = 0; i < 2; i++) {
		if (read_ptr(&p, (const void *)c->v, c->idx, false, c->compat) < 0)
			return false;
		if (p) {
			c->ptr = (__u64)p;
			c->cur = 0;
			return true;
		}
		if (!c->envp_next || !c->envp)
			return false;
		c->v = c->envp;
		c->envp_next = 0;
		c->idx = 0;
	}
	return false;
}

EF_CALLBACK measure_step(__u64 i, void *unused)
{
	__u32 zero = 0;
	struct measure_ctx *c = bpf_map_lookup_elem(&measure_state, &zero);
	struct kpath *buf = bpf_map_lookup_elem(&kpath_scratch, &zero);

	if (!c || !buf)
		return 1;
	if (!c->ptr && !measure_next(c)) {
		c->done = 1;
		return 1;
	}
	long n = bpf_probe_read_user_str(buf->name, sizeof(buf->name), (const char *)c->ptr + c->cur);

	if (n < 0)
		return 1; /* unreadable: not done */
	/* Before 6.16 an empty user string reads as 0 bytes, not 1. */
	if (n == 0)
		n = 1;
	if (n == sizeof(buf->name)) {
		c->cur += sizeof(buf->name) - 1;
		return 0;
	}
	__u32 len = c->cur + n;

	c->bytes += len;
	c->strings++;
	if (len > c->longest)
		c->longest = len;
	c->ptr = 0;
	c->idx++;
	return 0;
}

static __always_inline void measure_args(struct ef_event *e, const void *argv, const void *envp, bool compat)
{
	__u32 zero = 0;
	struct measure_ctx *c = bpf_map_lookup_elem(&measure_state, &zero);

	if (!c || !argv)
		return;
	__builtin_memset(c, 0, sizeof(*c));
	c->v = (__u64)argv;
	c->envp = (__u64)envp;
	c->envp_next = 1;
	c->compat = compat;
	bpf_loop(EF_MEASURE_STEPS, measure_step, 0, 0);
	if (!c->done)
		return;
	e->h.arg_bytes = c->bytes;
	e->h.arg_strings = c->strings;
	e->h.arg_longest = c->longest;
}
#else
static __always_inline void measure_args(struct ef_event *e, const void *argv, const void *envp, bool compat)
{
}
#endif

/* Appends up to max strings; more than that is marked truncated. */
static __always_inline __u32 read_strv(__u32 off, const void *v, __u32 max, bool kernel, bool compat,
				       __u16 *count, __u32 *bytes, bool *trunc)
{
	__u32 zero = 0;
	struct strv_ctx *c = bpf_map_lookup_elem(&strv_state, &zero);

	if (!c)
		return off;
	c->v = (__u64)v;
	c->max = max;
	c->off = off;
	c->bytes = 0;
	c->count = 0;
	c->kernel = kernel;
	c->compat = compat;
	c->trunc = 0;
	/* One iteration beyond max looks for an entry that did not fit. */
	EF_LOOP(EF_ARGS_CAP + 1, strv_step);
	*count = c->count;
	*bytes = c->bytes;
	*trunc = c->trunc;
	return c->off;
}

static __always_inline __u32 copy_task_state(struct ef_event *e, __u32 off, struct ef_task *st)
{
	e->h.hooks = st->hooks;
	if (st->flags & EF_F_HAS_INTERP) {
		__u32 n = st->interp_len;

		if (n > EF_INTERP_CAP)
			n = EF_INTERP_CAP;
		if (off <= EF_DATA_SIZE - EF_INTERP_CAP && n > 0) {
			bpf_probe_read_kernel(e->data + off, n, st->interp);
			off += n;
			e->h.interp_len = n;
			e->h.flags |= EF_F_HAS_INTERP;
		}
	}
	e->h.loaders = st->loaders;
	if (st->flags & EF_F_HAS_HEAD) {
		__u32 n = st->head_len;

		if (n > EF_HEAD_CAP)
			n = EF_HEAD_CAP;
		if (off <= EF_DATA_SIZE - EF_HEAD_CAP) {
			if (n > 0)
				bpf_probe_read_kernel(e->data + off, n, st->head);
			off += n;
			e->h.head_len = n;
			e->h.flags |= EF_F_HAS_HEAD;
		}
	}
	if (st->flags & EF_F_HAS_BINARY) {
		__u32 n = st->bin_path_len;

		e->h.flags |= EF_F_HAS_BINARY | (st->flags & EF_F_BIN_PATH_TRUNC);
		e->h.bin_ino = st->bin_ino;
		e->h.bin_dev = st->bin_dev;
		e->h.bin_mode = st->bin_mode;
		e->h.bin_ctime_ns = st->bin_ctime_ns;
		if (n > EF_BINPATH_CAP)
			n = EF_BINPATH_CAP;
		if (off <= EF_DATA_SIZE - EF_BINPATH_CAP && n > 0) {
			bpf_probe_read_kernel(e->data + off, n, st->bin_path);
			off += n;
			e->h.bin_path_len = n;
			e->h.bin_ncomp = st->bin_ncomp;
		} else if (n > 0) {
			e->h.flags |= EF_F_BIN_PATH_TRUNC;
		}
	}
	return off;
}

static __always_inline __u32 read_stdin(struct ef_event *e, __u32 off, struct task_struct *task)
{
	struct files_struct *files = TYPED_READ(task, files);
	struct file *f = 0;

	if (!files)
		return off;
	struct fdtable *fdt = TYPED_READ(files, fdt);

	if (TYPED_READ(fdt, max_fds) > 0) {
		struct file **fds = TYPED_READ(fdt, fd);

		bpf_probe_read_kernel(&f, sizeof(f), &fds[0]);
	}
	if (!f) {
		e->h.flags |= EF_F_STDIN_CLOSED;
		return off;
	}
	struct inode *inode = BPF_CORE_READ(f, f_inode);

	e->h.flags |= EF_F_HAS_STDIN;
	e->h.stdin_mode = BPF_CORE_READ(inode, i_mode);
	e->h.stdin_ino = BPF_CORE_READ(inode, i_ino);
	e->h.stdin_dev = BPF_CORE_READ(inode, i_sb, s_dev);

	bool trunc = false;
	__u16 ncomp = 0;
	__u32 start = off;

	off = walk_path(BPF_CORE_READ(f, f_path.mnt), BPF_CORE_READ(f, f_path.dentry), WALK_EVENT, 0,
			off, &ncomp, &trunc);
	e->h.stdin_path_len = off - start;
	e->h.stdin_ncomp = ncomp;
	if (trunc)
		e->h.flags |= EF_F_STDIN_PATH_TRUNC;
	return off;
}

/* Appends one walked path to the event; returns the new offset. */
static __always_inline __u32 append_path(struct ef_event *e, __u32 off, struct vfsmount *mnt, struct dentry *dentry,
					 struct path *root, __u16 *len, __u16 *ncomp, __u32 *flags, __u32 has,
					 __u32 trunc_flag)
{
	bool trunc = false;
	__u32 start = off;

	if (!mnt || !dentry)
		return off;
	off = walk_path_to(mnt, dentry, root, WALK_EVENT, 0, off, ncomp, &trunc);
	*len = off - start;
	*flags |= has;
	if (trunc)
		*flags |= trunc_flag;
	return off;
}

/*
 * The caller's working directory and executable, walked in the kernel at
 * the failure: a caller that chdirs or exits right after failing cannot
 * change them, and userspace needs no /proc/<pid> for them. Both are
 * walked up to the caller's root, as the caller sees them; its mount
 * namespace and root tell userspace where a path it gave can be resolved
 * once it is gone.
 */
static __always_inline __u32 read_task_paths(struct ef_event *e, __u32 off, struct task_struct *task)
{
	struct fs_struct *fs = TYPED_READ(task, fs);

	e->h.mnt_ns = TYPED_READ(task, nsproxy, mnt_ns, ns.inum);
	if (!fs)
		return off;
	struct path *root = &fs->root;
	struct inode *root_inode = TYPED_READ(fs, root.dentry, d_inode);

	e->h.root_ino = TYPED_READ(root_inode, i_ino);
	e->h.root_dev = TYPED_READ(root_inode, i_sb, s_dev);
	off = append_path(e, off, TYPED_READ(fs, pwd.mnt), TYPED_READ(fs, pwd.dentry), root, &e->h.cwd_path_len,
			  &e->h.cwd_ncomp, &e->h.flags, EF_F_HAS_CWD, EF_F_CWD_TRUNC);

	struct file *exe = TYPED_READ(task, mm, exe_file);

	if (exe)
		off = append_path(e, off, TYPED_READ(exe, f_path.mnt), TYPED_READ(exe, f_path.dentry), root,
				  &e->h.exe_path_len, &e->h.exe_ncomp, &e->h.flags, EF_F_HAS_EXE, EF_F_EXE_TRUNC);
	return off;
}

#ifdef EF_PERFBUF
/*
 * A perf sample's size is a 16-bit field: its header (8 bytes), the raw
 * data's length (4) and the record, padded to 8 bytes, must fit. The
 * largest record does; nothing is ever cut to make it.
 */
_Static_assert(8 + ((4 + sizeof(struct ef_event) + 7) & ~7) <= 0xffff,
	       "the largest record does not fit a perf sample");
#endif

/*
 * Sends size bytes of e; what the buffer cannot take is counted in `lost`
 * at lost_index, never dropped silently. ctx is the program's context,
 * which the perf event array needs.
 */
static __always_inline void submit(void *ctx, struct ef_event *e, __u32 size, __u32 lost_index)
{
	long err;

	if (size > sizeof(*e))
		size = sizeof(*e);
#ifdef EF_PERFBUF
	err = bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, e, size);
#else
	err = bpf_ringbuf_output(&events, e, size, 0);
#endif
	if (err != 0) {
		__u64 *n = bpf_map_lookup_elem(&lost, &lost_index);

		if (n)
#ifdef EF_LEGACY
			(*n)++;
#else
			__sync_fetch_and_add(n, 1);
#endif
	}
}

/* How the syscall's arguments are read: whose memory, which pointer size. */
enum ef_args {
	EF_ARGS_USER = 0,
	EF_ARGS_KERNEL = 1, /* kernel_execve: kernel pointers */
	EF_ARGS_COMPAT = 2, /* ia32 syscall: 4-byte user pointers */
};

#ifndef EF_LEGACY
/*
 * Folding storms. A thread that fails the same exec again and again (a
 * retry loop, a fork bomb's children excepted) produces identical
 * failures; the first two are sent in full, the second carrying a rid
 * (fold_seen below says why not the first), and the repeats only
 * bump a counter that userspace collects with the flush program below. Two
 * failures fold only if they are identical in every field an event reports
 * except argv and envp - same thread, credentials, errno, syscall, path,
 * binary, working directory, executable, stdin, cgroup, comm - so the
 * counts can stand in for full records whatever the dedup keys; repeats
 * records say nothing of argv and envp.
 *
 * The count word's top bit marks an entry being deleted: an increment that
 * finds it set was not counted by the flush and is sent as a full record,
 * so no count is lost or doubled whichever comes first.
 */
#define FOLD_DEAD (1ull << 63)

struct fold_key {
	__u64 path_hash;
	__u64 bin_ino;
	__u64 bin_ctime;
	__u64 exe_ino;
	__u64 cwd;
	__u64 stdin_file;
	__u64 cgroup_id;
	__u32 tid;
	__u32 uid;
	__u32 euid;
	__u32 gid;
	__u32 ppid;
	__u32 loginuid;
	__u32 bin_dev;
	__u32 at_flags;
	__u32 flags;
	__u32 path_len;
	__s32 ret;
	__s32 dirfd;
	__u16 hooks;
	__u8 syscall;
	__u8 pad[5];
	char comm[16];
};

struct fold_val {
	__u64 w; /* repeats not yet flushed, | FOLD_DEAD */
	__u64 rid;
	__u64 first_ns;
	__u64 last_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	/* Freed after an RCU grace period, so an increment racing a delete
	 * never lands in another key's reused element. */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096); /* resized from probe.Config */
	__type(key, struct fold_key);
	__type(value, struct fold_val);
} folds SEC(".maps");

/*
 * Failures seen once, not yet counted: a key enters folds on its second
 * occurrence, so a storm of distinct failures (each seen once) cannot fill
 * folds and keep the repeats that follow it from being counted. A slot
 * holds the fingerprint of the last key hashed to it; a key that finds its
 * own was seen before. Two keys sharing a slot only delay each other's
 * admission (nothing is counted here), and two sharing a fingerprint only
 * admit early (folds compares whole keys). An array, not an LRU hash: a
 * lookup costs a few instructions where an LRU update took a quarter of a
 * distinct failure's hook.
 */
#define FOLD_SEEN_SLOTS 65536

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FOLD_SEEN_SLOTS); /* 1 when not folding */
	__type(key, __u32);
	__type(value, __u64);
} fold_seen SEC(".maps");

_Static_assert(sizeof(struct fold_key) % 8 == 0, "fold_key is hashed by the word");

/* A 64-bit fingerprint of k: FNV-1a by the word, then a final mix. */
static __always_inline __u64 fold_fingerprint(struct fold_key *k)
{
	__u64 *w = (__u64 *)k;
	__u64 h = 0xcbf29ce484222325ull;

#pragma unroll
	for (int i = 0; i < sizeof(*k) / 8; i++)
		h = (h ^ w[i]) * 0x100000001b3ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h | 1; /* 0 marks an empty slot */
}

/* Whether k was seen since its slot last changed hands; notes it if not. */
static __always_inline bool fold_seen_before(struct fold_key *k)
{
	__u64 fp = fold_fingerprint(k);
	__u32 slot = (fp >> 32) % FOLD_SEEN_SLOTS;
	__u64 *v = bpf_map_lookup_elem(&fold_seen, &slot);

	if (!v)
		return false;
	if (*v == fp) {
		*v = 0;
		return true;
	}
	*v = fp;
	return false;
}

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} fold_rid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fold_key);
} fold_scratch SEC(".maps");

struct hash_ctx {
	__u64 h;
	__u32 len;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hash_ctx);
} hash_state SEC(".maps");

/* One 8-byte word of the path (in the scratch event) into an FNV-1a-style hash. */
EF_CALLBACK hash_step(__u64 i, void *unused)
{
	__u32 zero = 0;
	struct hash_ctx *c = bpf_map_lookup_elem(&hash_state, &zero);
	struct ef_event *e = bpf_map_lookup_elem(&scratch, &zero);

	if (!c || !e)
		return 1;
	__u32 at = i * 8;

	if (at >= c->len || at > EF_PATH_CAP - 8)
		return 1;
	__u64 w = *(__u64 *)(e->data + at);
	__u32 left = c->len - at;

	/* Bytes past the string are left over from earlier records. */
	if (left < 8)
		w &= (1ull << (left * 8)) - 1;
	c->h = (c->h ^ w) * 0x100000001b3ull;
	return 0;
}

static __always_inline __u64 path_hash(__u32 len)
{
	__u32 zero = 0;
	struct hash_ctx *c = bpf_map_lookup_elem(&hash_state, &zero);

	if (!c)
		return 0;
	c->h = 0xcbf29ce484222325ull;
	c->len = len;
	EF_LOOP(EF_PATH_CAP / 8, hash_step);
	return c->h ^ len;
}

/*
 * Counts this failure if an identical one was sent before: returns true
 * when nothing more is to be sent. Otherwise the record to send carries a
 * rid when its repeats will be counted.
 */
static __always_inline bool fold_failure(struct ef_event *e, struct ef_task *st, struct task_struct *task)
{
	__u32 zero = 0;
	struct fold_key *k = bpf_map_lookup_elem(&fold_scratch, &zero);

	if (!k)
		return false;
	__builtin_memset(k, 0, sizeof(*k));
	k->path_len = e->h.path_len;
	k->path_hash = path_hash(e->h.path_len);
	if (st && (st->flags & EF_F_HAS_BINARY)) {
		k->bin_ino = st->bin_ino;
		k->bin_ctime = st->bin_ctime_ns;
		k->bin_dev = st->bin_dev;
		k->hooks = st->hooks;
	} else if (st) {
		k->hooks = st->hooks;
	}
	k->exe_ino = TYPED_READ(task, mm, exe_file, f_inode, i_ino);
	k->cwd = (__u64)TYPED_READ(task, fs, pwd.dentry);
	struct fdtable *fdt = TYPED_READ(task, files, fdt);
	struct file **fds = TYPED_READ(fdt, fd);
	struct file *f0 = 0;

	if (fds && TYPED_READ(fdt, max_fds) > 0)
		bpf_probe_read_kernel(&f0, sizeof(f0), &fds[0]);
	k->stdin_file = (__u64)f0;
	k->cgroup_id = e->h.cgroup_id;
	k->tid = e->h.tid;
	k->uid = e->h.uid;
	k->euid = e->h.euid;
	k->gid = e->h.gid;
	k->ppid = e->h.ppid;
	k->loginuid = e->h.loginuid;
	k->at_flags = e->h.at_flags;
	k->flags = e->h.flags;
	k->ret = e->h.ret;
	k->dirfd = e->h.dirfd;
	k->syscall = e->h.syscall;
	__builtin_memcpy(k->comm, e->h.comm, sizeof(k->comm));

	__u64 now = e->h.boot_ns;
	struct fold_val *v = bpf_map_lookup_elem(&folds, k);

	if (v) {
		__u64 old = __sync_fetch_and_add(&v->w, 1);

		if (old & FOLD_DEAD)
			return false; /* being deleted: this one goes out in full */
		v->last_ns = now;
		if (old == 0) {
			v->first_ns = now;
			struct ef_header h = {};

			/* Wakes userspace to schedule a flush; if the ring is
			 * full, its periodic flush still collects the count. */
			h.kind = EF_KIND_FOLD_PENDING;
			h.rid = v->rid;
			h.boot_ns = now;
			bpf_ringbuf_output(&events, &h, sizeof(h), 0);
		}
		return true;
	}
	/* Seen once so far: sent in full, without a rid. */
	if (!fold_seen_before(k))
		return false;
	__u64 *ctr = bpf_map_lookup_elem(&fold_rid, &zero);

	if (!ctr)
		return false;
	struct fold_val nv = {
		.rid = __sync_fetch_and_add(ctr, 1) + 1,
		.first_ns = now,
		.last_ns = now,
	};

	/* Full, or another CPU inserted the same key first: send in full. */
	if (bpf_map_update_elem(&folds, k, &nv, BPF_NOEXIST) == 0)
		e->h.rid = nv.rid;
	return false;
}

/*
 * Run by userspace (BPF_PROG_RUN): hands over every count, and forgets
 * entries idle for longer than idle_ns (all of them with force, at
 * shutdown, after the hooks are detached).
 */
struct fold_flush_args {
	__u64 idle_ns;
	__u64 force;
};

struct fold_flush_ctx {
	__u64 now;
	__u64 idle_ns;
	__u64 force;
	__u64 failed;
};

static long flush_one(struct bpf_map *map, struct fold_key *k, struct fold_val *v, struct fold_flush_ctx *c)
{
	bool forget = c->force || c->now - v->last_ns > c->idle_ns;
	__u64 old = __sync_lock_test_and_set(&v->w, forget ? FOLD_DEAD : 0);

	if (old & FOLD_DEAD)
		return 0;
	if (old == 0 && !forget)
		return 0;
	struct ef_header h = {};

	h.kind = EF_KIND_REPEATS;
	h.rid = v->rid;
	h.repeats = old;
	h.repeats_first_ns = v->first_ns;
	h.boot_ns = v->last_ns;
	if (forget)
		h.flags |= EF_F_FOLD_GONE;
	if (bpf_ringbuf_output(&events, &h, sizeof(h), 0) != 0) {
		/* Kept for the next flush; increments that met the dead mark
		 * went out in full and must not be added. */
		__sync_lock_test_and_set(&v->w, old);
		c->failed++;
		return 0;
	}
	if (forget)
		bpf_map_delete_elem(map, k);
	return 0;
}

SEC("syscall")
int fold_flush(struct fold_flush_args *args)
{
	struct fold_flush_ctx c = {
		.now = bpf_ktime_get_boot_ns(),
		.idle_ns = args->idle_ns,
		.force = args->force,
	};

	bpf_for_each_map_elem(&folds, flush_one, &c, 0);
	return c.failed;
}

#else
static __always_inline bool fold_failure(struct ef_event *e, struct ef_task *st, struct task_struct *task)
{
	return false;
}
#endif /* EF_LEGACY */

/* Who failed: the thread's ids, credentials, cgroup and comm, and when. */
static __always_inline void fill_caller(struct ef_event *e, struct task_struct *task)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	e->h.pid = pid_tgid >> 32;
	e->h.tid = (__u32)pid_tgid;
	e->h.ppid = TYPED_READ(task, real_parent, tgid);
	e->h.uid = TYPED_READ(task, cred, uid.val);
	e->h.gid = TYPED_READ(task, cred, gid.val);
	e->h.euid = TYPED_READ(task, cred, euid.val);
	if (bpf_core_field_exists(task->loginuid)) {
		e->h.loginuid = TYPED_READ(task, loginuid.val);
		e->h.flags |= EF_F_HAS_LOGINUID;
	}
	e->h.boot_ns = record_ns();
	e->h.cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(e->h.comm, sizeof(e->h.comm));
}

/*
 * The path, first in the data: the kernel's copy when there is one, else
 * what the caller's memory holds. Returns the offset after it.
 */
static __always_inline __u32 read_path(struct ef_event *e, const char *filename, const char *kpath, bool kernel)
{
	long n;

	if (kpath) {
		n = bpf_probe_read_kernel_str(e->data, EF_PATH_CAP, kpath);
		e->h.flags |= EF_F_PATH_KERNEL;
	} else {
		n = read_str(e->data, EF_PATH_CAP, filename, kernel);
	}
	if (n == 0 && filename) {
		e->data[0] = 0;
		n = 1;
	}
	if (n > 0) {
		e->h.path_len = n;
		if (n == EF_PATH_CAP)
			e->h.flags |= EF_F_PATH_TRUNC;
		return n;
	}
	if (filename) {
		/* Unreadable: the path is absent and says why. */
		e->h.flags |= EF_F_PATH_TRUNC;
	}
	return 0;
}

/* argv, then envp unless the environment is not captured. */
static __always_inline __u32 read_arguments(struct ef_event *e, __u32 off, const void *argv, const void *envp,
					    bool kernel, bool compat)
{
	bool trunc = false;
	__u32 bytes = 0;

	if (argv)
		off = read_strv(off, argv, max_args, kernel, compat, &e->h.argc, &bytes, &trunc);
	e->h.args_len = bytes;
	if (trunc)
		e->h.flags |= EF_F_ARGS_TRUNC;
	if (capture_env && envp) {
		trunc = false;
		bytes = 0;
		off = read_strv(off, envp, max_env, kernel, compat, &e->h.envc, &bytes, &trunc);
		e->h.env_len = bytes;
		if (trunc)
			e->h.flags |= EF_F_ENV_TRUNC;
	}
	return off;
}

static __always_inline void emit_failure(void *ctx, long ret, __u8 syscall, const char *filename,
					 const void *argv, const void *envp, __s32 dirfd,
					 __u32 at_flags, struct ef_task *st, __u8 args, const char *kpath)
{
	bool kernel = args == EF_ARGS_KERNEL;
	bool compat = args == EF_ARGS_COMPAT;
	__u32 zero = 0;
	struct ef_event *e = bpf_map_lookup_elem(&scratch, &zero);

	if (!e)
		return;
	struct task_struct *task = current_task();

	__builtin_memset(&e->h, 0, sizeof(e->h));
	e->h.kind = EF_KIND_FAILURE;
	e->h.syscall = syscall;
	e->h.ret = ret;
	e->h.dirfd = dirfd;
	e->h.at_flags = at_flags;
	if (compat)
		e->h.flags |= EF_F_COMPAT;
	fill_caller(e, task);

	__u32 off = read_path(e, filename, kpath, kernel);

	if (fold && !kernel && fold_failure(e, st, task))
		return;
	if (st)
		off = copy_task_state(e, off, st);
	off = read_stdin(e, off, task);
	if (!kernel)
		off = read_task_paths(e, off, task);
	off = read_arguments(e, off, argv, envp, kernel, compat);
	if (ret == -E2BIG && !kernel)
		measure_args(e, argv, envp, compat);
	if (off > EF_DATA_SIZE)
		off = EF_DATA_SIZE;
	e->h.data_len = off;
	submit(ctx, e, sizeof(e->h) + off, EF_LOST_FAILURE);
}

static __always_inline void emit_success(void *ctx, __u32 tid)
{
	__u32 zero = 0;
	struct ef_event *e = bpf_map_lookup_elem(&scratch, &zero);

	if (!e)
		return;
	__builtin_memset(&e->h, 0, sizeof(e->h));
	e->h.kind = EF_KIND_SUCCESS;
	e->h.pid = bpf_get_current_pid_tgid() >> 32;
	e->h.tid = tid;
	e->h.boot_ns = record_ns();
	/* The program now running, named by exec from its file: a search
	 * ends only with a success of the program it looked for. */
	bpf_get_current_comm(e->h.comm, sizeof(e->h.comm));
	submit(ctx, e, sizeof(e->h), EF_LOST_MARKER);
}

/*
 * After a failure: keep only the PATH-search marker, drop what exec learned.
 * An execvp search goes on past EACCES too, so a marker set by an earlier
 * ENOENT survives other failures.
 */
static __always_inline void after_failure(__u64 key, struct ef_task *st, long ret)
{
	bool pending = ret == -ENOENT || (st && (st->flags & EF_F_PENDING_ENOENT));

	if (!pending) {
		if (st)
			bpf_map_delete_elem(&tasks, &key);
		return;
	}
	if (!st)
		st = task_state(key);
	if (st) {
		st->flags = EF_F_PENDING_ENOENT;
		st->hooks = 0;
		st->loaders = 0;
	}
}

/*
 * -ERESTARTSYS .. -ERESTART_RESTARTBLOCK never reach the caller: the
 * syscall is restarted (or the signal handler runs and it is restarted), so
 * they are not failures. What exec learned is dropped; a pending search
 * stays pending.
 */
static __always_inline bool restarted(long ret)
{
	return ret <= -512 && ret >= -516;
}

/* Before 5.16 the field was group_exit_task. */
struct signal_struct___old {
	struct task_struct *group_exit_task;
} __attribute__((preserve_access_index));

/*
 * Another thread of the process is exec'ing and has killed this one
 * (de_thread): whatever this thread's execve returns, it never reaches
 * the caller, and the process went on to run the other thread's program.
 */
static __always_inline bool lost_exec_race(void)
{
	struct task_struct *task = current_task();
	struct signal_struct *sig = TYPED_READ(task, signal);
	struct signal_struct___old *old = (void *)sig;
	struct task_struct *execer = 0;

	if (bpf_core_field_exists(sig->group_exec_task))
		execer = TYPED_READ(sig, group_exec_task);
	else
		execer = TYPED_READ(old, group_exit_task);
	return execer && execer != task;
}

/*
 * The syscall exit, for the native and the compat ABI alike: the verdict,
 * the PATH-search marker on success, and on failure the arguments read
 * from the caller's saved registers.
 */
static __always_inline int on_syscall_exit(void *ctx, long ret, bool execveat, bool compat, struct pt_regs *regs)
{
	__u64 key = task_key();
	struct ef_task *st = task_lookup(key);
	struct kpath *kp = kernel_path ? bpf_map_lookup_elem(&kpaths, &key) : 0;

	if (ret >= 0) {
		/* The cheap path every successful exec takes. */
		if (kp)
			bpf_map_delete_elem(&kpaths, &key);
		if (!st)
			return 0;
		/* The tid the search's failures carried: a non-leader thread
		 * has taken the leader's pid by now. */
		if (st->flags & EF_F_PENDING_ENOENT)
			emit_success(ctx, st->tid);
		bpf_map_delete_elem(&tasks, &key);
		return 0;
	}
	if (restarted(ret) || lost_exec_race()) {
		if (kp)
			bpf_map_delete_elem(&kpaths, &key);
		after_failure(key, st, 0);
		return 0;
	}

	const char *filename;
	const void *argv, *envp;
	__s32 dirfd = AT_FDCWD;
	__u32 at_flags = 0;

	if (compat) {
#if defined(__TARGET_ARCH_x86)
		/* i386 syscall ABI: bx, cx, dx, si, di; 32-bit values. */
		if (execveat) {
			dirfd = (__s32)REG_READ(regs, bx);
			filename = (const char *)(__u64)(__u32)REG_READ(regs, cx);
			argv = (const void *)(__u64)(__u32)REG_READ(regs, dx);
			envp = (const void *)(__u64)(__u32)REG_READ(regs, si);
			at_flags = (__u32)REG_READ(regs, di);
		} else {
			filename = (const char *)(__u64)(__u32)REG_READ(regs, bx);
			argv = (const void *)(__u64)(__u32)REG_READ(regs, cx);
			envp = (const void *)(__u64)(__u32)REG_READ(regs, dx);
		}
#else
		return 0;
#endif
	} else if (execveat) {
		/* The native syscall ABI (x86_64: di, si, dx, r10, r8; arm64:
		 * orig_x0, x1..x4, x0 being the return value by now). */
		dirfd = (__s32)SYSCALL_ARG(1, regs);
		filename = (const char *)SYSCALL_ARG(2, regs);
		argv = (const void *)SYSCALL_ARG(3, regs);
		envp = (const void *)SYSCALL_ARG(4, regs);
		at_flags = (__u32)SYSCALL_ARG(5, regs);
	} else {
		filename = (const char *)SYSCALL_ARG(1, regs);
		argv = (const void *)SYSCALL_ARG(2, regs);
		envp = (const void *)SYSCALL_ARG(3, regs);
	}
	emit_failure(ctx, ret, execveat ? EF_SYSCALL_EXECVEAT : EF_SYSCALL_EXECVE, filename, argv, envp, dirfd,
		     at_flags, st, compat ? EF_ARGS_COMPAT : EF_ARGS_USER, kp ? kp->name : 0);
	if (kp)
		bpf_map_delete_elem(&kpaths, &key);
	after_failure(key, st, ret);
	return 0;
}

#ifndef EF_LEGACY
static __always_inline struct pt_regs *user_regs(void)
{
	return (struct pt_regs *)bpf_task_pt_regs(current_task());
}
#endif

/*
 * Every exec that succeeded, whatever the ABI and whoever started it: the
 * thread's state and kernel path copy are dropped here. The syscall exit
 * cannot always do it: a 64-bit execve that loads a 32-bit program returns
 * as a compat syscall (the loader sets TS_COMPAT), which the
 * syscalls/sys_exit_* tracepoints skip, and the stale state would be read
 * by the thread's next exec.
 */
SEC("raw_tracepoint/sched_process_exec")
int raw_exec_done(void *ctx)
{
	__u64 key = task_key();
	struct ef_task *st = task_lookup(key);

	if (kernel_path)
		bpf_map_delete_elem(&kpaths, &key);
	if (!st)
		return 0;
	if (st->flags & EF_F_PENDING_ENOENT)
		emit_success(ctx, st->tid);
	bpf_map_delete_elem(&tasks, &key);
	return 0;
}

/* The syscall numbers of execve and execveat, for hooks that see every syscall. */
#if defined(__TARGET_ARCH_x86)
#define TS_COMPAT 0x0002
#define NR_EXECVE 59
#define NR_EXECVEAT 322
#define IA32_NR_EXECVE 11
#define IA32_NR_EXECVEAT 358
#define SYSCALL_NR(regs) BPF_CORE_READ(regs, orig_ax)
#else
#define NR_EXECVE 221
#define NR_EXECVEAT 281
struct pt_regs___nr {
	__s32 syscallno;
} __attribute__((preserve_access_index));
#define SYSCALL_NR(regs) BPF_CORE_READ((struct pt_regs___nr *)(regs), syscallno)
#endif

#ifndef EF_LEGACY
SEC("tracepoint/syscalls/sys_exit_execve")
int tp_exit_execve(struct trace_event_raw_sys_exit *ctx)
{
	return on_syscall_exit(ctx, ctx->ret, false, false, user_regs());
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int tp_exit_execveat(struct trace_event_raw_sys_exit *ctx)
{
	return on_syscall_exit(ctx, ctx->ret, true, false, user_regs());
}

/*
 * fentry mode takes the verdict from the syscall functions' return instead:
 * a BPF link, no perf event (so no CAP_SYS_ADMIN on kernels that restrict
 * perf_event_open), and no syscall tracepoint, whose being enabled sends
 * every syscall of every process through the slow exit path.
 */
#if defined(__TARGET_ARCH_x86)
#define SYS_PREFIX "__x64_sys_"
#else
#define SYS_PREFIX "__arm64_sys_"
#endif

SEC("fexit/" SYS_PREFIX "execve")
int fexit_execve(__u64 *ctx)
{
	__u64 ret = 0;

	bpf_get_func_ret(ctx, &ret);
	return on_syscall_exit(ctx, (long)ret, false, false, user_regs());
}

SEC("fexit/" SYS_PREFIX "execveat")
int fexit_execveat(__u64 *ctx)
{
	__u64 ret = 0;

	bpf_get_func_ret(ctx, &ret);
	return on_syscall_exit(ctx, (long)ret, true, false, user_regs());
}

/*
 * Compat (ia32) execs: the syscalls/sys_exit_* tracepoints skip 32-bit
 * syscalls on x86_64, so an `int $0x80` execve or a 32-bit program would
 * fail unseen. The kernel modes hook the compat entry points' return; the
 * tracepoint mode takes the raw sys_exit tracepoint, which fires for every
 * syscall of either ABI, and keeps only compat execve/execveat.
 */
#if defined(__TARGET_ARCH_x86)
SEC("raw_tracepoint/sys_exit")
int raw_exit_compat(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = current_task();

	if (!(task->thread_info.status & TS_COMPAT))
		return 0;
	/* The tracepoint's regs (args[0]) are these, but typed. */
	struct pt_regs *regs = user_regs();
	long nr = regs->orig_ax;

	if (nr != IA32_NR_EXECVE && nr != IA32_NR_EXECVEAT)
		return 0;
	return on_syscall_exit(ctx, ctx->args[1], nr == IA32_NR_EXECVEAT, true, regs);
}

/* The compat wrappers return a long that holds an int errno. */
SEC("fexit/__ia32_compat_sys_execve")
int fexit_compat_execve(__u64 *ctx)
{
	__u64 ret = 0;

	bpf_get_func_ret(ctx, &ret);
	return on_syscall_exit(ctx, (int)ret, false, true, user_regs());
}

SEC("fexit/__ia32_compat_sys_execveat")
int fexit_compat_execveat(__u64 *ctx)
{
	__u64 ret = 0;

	bpf_get_func_ret(ctx, &ret);
	return on_syscall_exit(ctx, (int)ret, true, true, user_regs());
}

SEC("kretprobe/__ia32_compat_sys_execve")
int BPF_KRETPROBE(kretprobe_compat_execve, long ret)
{
	return on_syscall_exit(ctx, (int)ret, false, true, user_regs());
}

SEC("kretprobe/__ia32_compat_sys_execveat")
int BPF_KRETPROBE(kretprobe_compat_execveat, long ret)
{
	return on_syscall_exit(ctx, (int)ret, true, true, user_regs());
}
#endif /* __TARGET_ARCH_x86: AArch32 compat execs are not hooked on arm64 */

/*
 * A seccomp filter that refuses an exec (with an errno, or a supervisor's
 * answer to a user notification) makes the kernel skip the syscall
 * function, so the verdicts taken at its return (the fexits above, the
 * compat kretprobes) never run. __secure_computing returns -1 for a skipped
 * syscall, with the error already in the registers; its return reports
 * those execs. Native execs only where their verdict is the fexit (set by
 * userspace): the syscall tracepoints see a skipped syscall themselves.
 */
const volatile __u8 seccomp_native = 0;

static __always_inline int on_seccomp_return(void *ctx, int ret)
{
	if (ret != -1)
		return 0;
	struct pt_regs *regs = user_regs();
	long nr = SYSCALL_NR(regs);
	long rv = PT_REGS_RC_CORE(regs);

	if (rv >= 0) /* SECCOMP_RET_TRAP rolls the registers back: no error returned */
		return 0;
#if defined(__TARGET_ARCH_x86)
	if (BPF_CORE_READ(current_task(), thread_info.status) & TS_COMPAT) {
		if (nr != IA32_NR_EXECVE && nr != IA32_NR_EXECVEAT)
			return 0;
		return on_syscall_exit(ctx, (int)rv, nr == IA32_NR_EXECVEAT, true, regs);
	}
#endif
	if (!seccomp_native || (nr != NR_EXECVE && nr != NR_EXECVEAT))
		return 0;
	return on_syscall_exit(ctx, rv, nr == NR_EXECVEAT, false, regs);
}

/* Raw context: __secure_computing lost its argument in 6.15. */
SEC("fexit/__secure_computing")
int fexit_seccomp(__u64 *ctx)
{
	__u64 ret = 0;

	bpf_get_func_ret(ctx, &ret);
	return on_seccomp_return(ctx, (int)ret);
}

SEC("kretprobe/__secure_computing")
int BPF_KRETPROBE(kretprobe_seccomp, long ret)
{
	return on_seccomp_return(ctx, (int)ret);
}
#else  /* EF_LEGACY */

/*
 * Before 5.15 the syscall's registers are known only where the raw
 * sys_exit tracepoint hands them over, so it gives the verdict, for every
 * syscall, keeping execve/execveat of either ABI.
 */

SEC("raw_tracepoint/sys_exit")
int raw_exit_legacy(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	long nr = SYSCALL_NR(regs);

#if defined(__TARGET_ARCH_x86)
	if (BPF_CORE_READ(current_task(), thread_info.status) & TS_COMPAT) {
		if (nr != IA32_NR_EXECVE && nr != IA32_NR_EXECVEAT)
			return 0;
		return on_syscall_exit(ctx, ctx->args[1], nr == IA32_NR_EXECVEAT, true, regs);
	}
#endif
	if (nr != NR_EXECVE && nr != NR_EXECVEAT)
		return 0;
	return on_syscall_exit(ctx, ctx->args[1], nr == NR_EXECVEAT, false, regs);
}
#endif /* EF_LEGACY */

/* fentry mode */

/*
 * Returns for the binary and for every interpreter; the first file is the
 * binary. Raw context: the return value is all that is needed.
 */
#ifndef EF_LEGACY
SEC("fexit/do_open_execat")
int fexit_open(__u64 *ctx)
{
	__u64 ret = 0;

	bpf_get_func_ret(ctx, &ret);
	on_open_ret(ret);
	return 0;
}
#else
/* No bpf_get_func_ret: the typed arguments, the return value last. */
SEC("fexit/do_open_execat")
int BPF_PROG(fexit_open, int fd, struct filename *name, int flags, struct file *ret)
{
	on_open_ret((__u64)ret);
	return 0;
}
#endif

SEC("fentry/do_open_execat")
int BPF_PROG(fentry_open_path, int fd, struct filename *name)
{
	on_open_entry(name);
	return 0;
}

SEC("fentry/security_bprm_creds_for_exec")
int BPF_PROG(fentry_creds, struct linux_binprm *bprm)
{
	on_creds(bprm);
	return 0;
}

SEC("fentry/exec_binprm")
int BPF_PROG(fentry_exec_binprm, struct linux_binprm *bprm)
{
	on_creds(bprm);
	return 0;
}

SEC("fentry/security_bprm_check")
int BPF_PROG(fentry_bprm_check, struct linux_binprm *bprm)
{
	on_bprm_check(bprm);
	return 0;
}

SEC("fentry/open_exec")
int BPF_PROG(fentry_open_exec, const char *name)
{
	on_open_exec(name);
	return 0;
}

static __always_inline void on_kernel_execve_ret(void *ctx, const char *filename, const char *const *argv,
						 const char *const *envp, long ret)
{
	__u64 key = task_key();
	struct ef_task *st = task_lookup(key);

	if (ret < 0)
		emit_failure(ctx, ret, EF_SYSCALL_KERNEL, filename, argv, envp, AT_FDCWD, 0, st, EF_ARGS_KERNEL, 0);
	if (kernel_path)
		bpf_map_delete_elem(&kpaths, &key);
	if (st)
		bpf_map_delete_elem(&tasks, &key);
}

/*
 * The helpers read the arguments: kernels before 6.13 refuse direct context
 * access to a pointer-to-pointer argument such as argv.
 */
SEC("fexit/kernel_execve")
int fexit_kernel_execve(__u64 *ctx)
{
	__u64 filename = 0, argv = 0, envp = 0, ret = 0;

#ifndef EF_LEGACY
	bpf_get_func_arg(ctx, 0, &filename);
	bpf_get_func_arg(ctx, 1, &argv);
	bpf_get_func_arg(ctx, 2, &envp);
	bpf_get_func_ret(ctx, &ret);
#else
	/* Neither the helpers nor typed access (char pointers are not
	 * structs): the trampoline's slots, read as memory. */
	bpf_probe_read_kernel(&filename, sizeof(filename), &ctx[0]);
	bpf_probe_read_kernel(&argv, sizeof(argv), &ctx[1]);
	bpf_probe_read_kernel(&envp, sizeof(envp), &ctx[2]);
	bpf_probe_read_kernel(&ret, sizeof(ret), &ctx[3]);
#endif
	on_kernel_execve_ret(ctx, (const char *)filename, (const char *const *)argv,
			     (const char *const *)envp, (int)ret);
	return 0;
}

/* kprobe mode: the same hooks where trampolines are unavailable */

SEC("kretprobe/do_open_execat")
int BPF_KRETPROBE(kretprobe_open, long ret)
{
	on_open_ret((__u64)ret);
	return 0;
}

SEC("kprobe/do_open_execat")
int BPF_KPROBE(kprobe_open_path, int fd, struct filename *name)
{
	on_open_entry(name);
	return 0;
}

SEC("kprobe/security_bprm_creds_for_exec")
int BPF_KPROBE(kprobe_creds, struct linux_binprm *bprm)
{
	on_creds(bprm);
	return 0;
}

SEC("kprobe/exec_binprm")
int BPF_KPROBE(kprobe_exec_binprm, struct linux_binprm *bprm)
{
	on_creds(bprm);
	return 0;
}

SEC("kprobe/security_bprm_check")
int BPF_KPROBE(kprobe_bprm_check, struct linux_binprm *bprm)
{
	on_bprm_check(bprm);
	return 0;
}

SEC("kprobe/open_exec")
int BPF_KPROBE(kprobe_open_exec, const char *name)
{
	on_open_exec(name);
	return 0;
}

SEC("kprobe/kernel_execve")
int BPF_KPROBE(kprobe_kernel_execve, const char *filename, const char *const *argv,
	       const char *const *envp)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct kexec_args a = {
		.filename = (__u64)filename,
		.argv = (__u64)argv,
		.envp = (__u64)envp,
	};

	bpf_map_update_elem(&kexec, &tid, &a, BPF_ANY);
	return 0;
}

/* int, not long: only eax holds the return value, the upper half is junk. */
SEC("kretprobe/kernel_execve")
int BPF_KRETPROBE(kretprobe_kernel_execve, int ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct kexec_args *a = bpf_map_lookup_elem(&kexec, &tid);

	if (!a)
		return 0;
	on_kernel_execve_ret(ctx, (const char *)a->filename, (const char *const *)a->argv,
			     (const char *const *)a->envp, ret);
	bpf_map_delete_elem(&kexec, &tid);
	return 0;
}

/*
 * Never used: they put the shared enums into the object's BTF, from which
 * bpf2go generates the Go constants (probe/gen.go's -type list), so the
 * decoder cannot drift from event.h.
 */
const enum ef_kind *unused_ef_kind __attribute__((unused));
const enum ef_syscall *unused_ef_syscall __attribute__((unused));
const enum ef_hook *unused_ef_hook __attribute__((unused));
const enum ef_flag *unused_ef_flag __attribute__((unused));
const enum ef_lost *unused_ef_lost __attribute__((unused));
