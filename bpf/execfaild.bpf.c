// SPDX-License-Identifier: GPL-2.0
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
#include "bpf_helpers.h"
#include "bpf_core_read.h"
#include "bpf_tracing.h"
#include "event.h"

char LICENSE[] SEC("license") = "GPL";

#define ENOENT 2
#define AT_FDCWD -100

/* Set from probe.Config before load; the verifier prunes dead branches. */
const volatile __u32 max_args = 32;
const volatile __u32 max_env = 32;
const volatile __u32 max_arg_len = 256;
const volatile __u8 capture_env = 1;

/* What a thread learned inside exec, consumed at the syscall exit. */
struct ef_task {
	__u32 flags;
	__u16 hooks;
	__u16 interp_len;
	__u16 bin_path_len;
	__u16 bin_ncomp;
	__u32 bin_dev;
	__u32 bin_mode;
	__u32 pad;
	__u64 bin_ino;
	__u64 bin_ctime_ns;
	char interp[EF_INTERP_CAP];
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

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22); /* resized from probe.Config */
} events SEC(".maps");

/*
 * LRU so that a thread killed inside exec (no syscall exit) cannot pin an
 * entry forever.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 2048);
	__type(key, __u32);
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

/* Records the ring buffer could not take; never lose silently. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

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
	__u32 off;
	__u32 tid;
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
		struct ef_task *st = bpf_map_lookup_elem(&tasks, &c->tid);

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
static long walk_step(__u64 i, void *unused)
{
	__u32 zero = 0;
	struct walk_ctx *c = bpf_map_lookup_elem(&walk_state, &zero);

	if (!c)
		return 1;
	struct vfsmount *vfsmnt = (void *)c->vfsmnt;
	struct dentry *dentry = (void *)c->dentry;
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

static __always_inline __u32 walk_path(struct vfsmount *vfsmnt, struct dentry *dentry, __u8 dst,
				       __u32 tid, __u32 off, __u16 *ncomp, bool *trunc)
{
	__u32 zero = 0;
	struct walk_ctx *c = bpf_map_lookup_elem(&walk_state, &zero);

	if (!c) {
		*trunc = true;
		return off;
	}
	c->vfsmnt = (__u64)vfsmnt;
	c->dentry = (__u64)dentry;
	c->off = off;
	c->tid = tid;
	c->dst = dst;
	c->ncomp = 0;
	c->trunc = 0;
	c->done = 0;
	bpf_loop(EF_PATH_DEPTH, walk_step, 0, 0);
	*ncomp = c->ncomp;
	*trunc = c->trunc || !c->done;
	return c->off;
}

static __always_inline struct ef_task *task_state(__u32 tid)
{
	struct ef_task *st = bpf_map_lookup_elem(&tasks, &tid);
	__u32 zero = 0;

	if (st)
		return st;
	struct ef_task *z = bpf_map_lookup_elem(&zero_task, &zero);

	if (!z)
		return 0;
	bpf_map_update_elem(&tasks, &tid, z, BPF_NOEXIST);
	return bpf_map_lookup_elem(&tasks, &tid);
}

static __always_inline void record_binary(struct ef_task *st, __u32 tid, struct file *file)
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
			      WALK_TASK, tid, 0, &ncomp, &trunc);

	st->bin_path_len = len;
	st->bin_ncomp = ncomp;
	st->flags |= EF_F_HAS_BINARY;
	if (trunc)
		st->flags |= EF_F_BIN_PATH_TRUNC;
}

static __always_inline void on_creds(struct linux_binprm *bprm)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct ef_task *st = task_state(tid);

	if (!st)
		return;
	st->hooks |= EF_HOOK_CREDS;
	record_binary(st, tid, BPF_CORE_READ(bprm, file));
}

static __always_inline void on_bprm_check(struct linux_binprm *bprm)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct ef_task *st = task_state(tid);

	if (!st)
		return;
	st->hooks |= EF_HOOK_LOADER;
	record_binary(st, tid, BPF_CORE_READ(bprm, file));
}

/* do_open_execat returned: a file means the open succeeded. */
static __always_inline void on_open_ret(__u64 ret)
{
	/* IS_ERR: the top 4095 values are negative errnos. */
	if (!ret || ret >= (__u64)-4095)
		return;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct ef_task *st = task_state(tid);

	if (!st)
		return;
	st->hooks |= EF_HOOK_OPEN;
	record_binary(st, tid, (struct file *)ret);
}

/* open_exec is called by binary loaders only: its name is the interpreter. */
static __always_inline void on_open_exec(const char *name)
{
	struct ef_task *st = task_state((__u32)bpf_get_current_pid_tgid());

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

static __always_inline int read_ptr(const void **dst, const void *src, bool kernel)
{
	if (kernel)
		return bpf_probe_read_kernel(dst, sizeof(*dst), src);
	return bpf_probe_read_user(dst, sizeof(*dst), src);
}

struct strv_ctx {
	__u64 v;
	__u32 max;
	__u32 off;
	__u32 bytes;
	__u16 count;
	__u8 kernel;
	__u8 trunc;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct strv_ctx);
} strv_state SEC(".maps");

/* Appends one string of a NULL-terminated pointer array. */
static long strv_step(__u64 i, void *unused)
{
	__u32 zero = 0;
	struct strv_ctx *c = bpf_map_lookup_elem(&strv_state, &zero);
	const char *p = 0;
	__u32 len = max_arg_len;

	if (!c)
		return 1;
	const char *const *v = (void *)c->v;

	if (read_ptr((const void **)&p, &v[i], c->kernel) < 0 || !p)
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

	if (n < 0)
		return 1;
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

/* Appends up to max strings; more than that is marked truncated. */
static __always_inline __u32 read_strv(__u32 off, const char *const *v, __u32 max, bool kernel,
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
	c->trunc = 0;
	/* One iteration beyond max looks for an entry that did not fit. */
	bpf_loop(EF_ARGS_CAP + 1, strv_step, 0, 0);
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
	struct files_struct *files = BPF_CORE_READ(task, files);
	struct file *f = 0;

	if (!files)
		return off;
	struct fdtable *fdt = BPF_CORE_READ(files, fdt);

	if (BPF_CORE_READ(fdt, max_fds) > 0) {
		struct file **fds = BPF_CORE_READ(fdt, fd);

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

static __always_inline void submit(struct ef_event *e, __u32 size)
{
	if (size > sizeof(*e))
		size = sizeof(*e);
	if (bpf_ringbuf_output(&events, e, size, 0) != 0) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&lost, &zero);

		if (n)
			(*n)++;
	}
}

static __always_inline void emit_failure(long ret, __u8 syscall, const char *filename,
					 const char *const *argv, const char *const *envp,
					 __s32 dirfd, __u32 at_flags, struct ef_task *st, bool kernel)
{
	__u32 zero = 0;
	struct ef_event *e = bpf_map_lookup_elem(&scratch, &zero);

	if (!e)
		return;
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	__builtin_memset(&e->h, 0, sizeof(e->h));
	e->h.kind = EF_KIND_FAILURE;
	e->h.syscall = syscall;
	e->h.ret = ret;
	e->h.dirfd = dirfd;
	e->h.at_flags = at_flags;
	e->h.pid = pid_tgid >> 32;
	e->h.tid = (__u32)pid_tgid;
	e->h.ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->h.uid = BPF_CORE_READ(task, cred, uid.val);
	e->h.gid = BPF_CORE_READ(task, cred, gid.val);
	e->h.euid = BPF_CORE_READ(task, cred, euid.val);
	if (bpf_core_field_exists(task->loginuid)) {
		e->h.loginuid = BPF_CORE_READ(task, loginuid.val);
		e->h.flags |= EF_F_HAS_LOGINUID;
	}
	e->h.boot_ns = bpf_ktime_get_boot_ns();
	e->h.cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(e->h.comm, sizeof(e->h.comm));

	__u32 off = 0;
	long n = read_str(e->data, EF_PATH_CAP, filename, kernel);

	if (n == 0 && filename) {
		e->data[0] = 0;
		n = 1;
	}
	if (n > 0) {
		off = n;
		e->h.path_len = n;
		if (n == EF_PATH_CAP)
			e->h.flags |= EF_F_PATH_TRUNC;
	}
	if (st)
		off = copy_task_state(e, off, st);
	off = read_stdin(e, off, task);

	bool trunc = false;
	__u32 bytes = 0;

	if (argv)
		off = read_strv(off, argv, max_args, kernel, &e->h.argc, &bytes, &trunc);
	e->h.args_len = bytes;
	if (trunc)
		e->h.flags |= EF_F_ARGS_TRUNC;
	if (capture_env && envp) {
		trunc = false;
		bytes = 0;
		off = read_strv(off, envp, max_env, kernel, &e->h.envc, &bytes, &trunc);
		e->h.env_len = bytes;
		if (trunc)
			e->h.flags |= EF_F_ENV_TRUNC;
	}
	if (off > EF_DATA_SIZE)
		off = EF_DATA_SIZE;
	e->h.data_len = off;
	submit(e, sizeof(e->h) + off);
}

static __always_inline void emit_success(__u32 tid)
{
	__u32 zero = 0;
	struct ef_event *e = bpf_map_lookup_elem(&scratch, &zero);

	if (!e)
		return;
	__builtin_memset(&e->h, 0, sizeof(e->h));
	e->h.kind = EF_KIND_SUCCESS;
	e->h.pid = bpf_get_current_pid_tgid() >> 32;
	e->h.tid = tid;
	e->h.boot_ns = bpf_ktime_get_boot_ns();
	submit(e, sizeof(e->h));
}

/*
 * After a failure: keep only the PATH-search marker, drop what exec learned.
 * An execvp search goes on past EACCES too, so a marker set by an earlier
 * ENOENT survives other failures.
 */
static __always_inline void after_failure(__u32 tid, struct ef_task *st, long ret)
{
	bool pending = ret == -ENOENT || (st && (st->flags & EF_F_PENDING_ENOENT));

	if (!pending) {
		if (st)
			bpf_map_delete_elem(&tasks, &tid);
		return;
	}
	if (!st)
		st = task_state(tid);
	if (st) {
		st->flags = EF_F_PENDING_ENOENT;
		st->hooks = 0;
	}
}

static __always_inline int on_syscall_exit(long ret, bool execveat)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct ef_task *st = bpf_map_lookup_elem(&tasks, &tid);

	if (ret >= 0) {
		/* The cheap path every successful exec takes. */
		if (!st)
			return 0;
		if (st->flags & EF_F_PENDING_ENOENT)
			emit_success(tid);
		bpf_map_delete_elem(&tasks, &tid);
		return 0;
	}

	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	const char *filename;
	const char *const *argv;
	const char *const *envp;
	__s32 dirfd = AT_FDCWD;
	__u32 at_flags = 0;

	/* x86_64 syscall ABI: di, si, dx, r10, r8. */
	if (execveat) {
		dirfd = (__s32)BPF_CORE_READ(regs, di);
		at_flags = (__u32)BPF_CORE_READ(regs, r8);
		filename = (const char *)BPF_CORE_READ(regs, si);
		argv = (const char *const *)BPF_CORE_READ(regs, dx);
		envp = (const char *const *)BPF_CORE_READ(regs, r10);
	} else {
		filename = (const char *)BPF_CORE_READ(regs, di);
		argv = (const char *const *)BPF_CORE_READ(regs, si);
		envp = (const char *const *)BPF_CORE_READ(regs, dx);
	}
	emit_failure(ret, execveat ? EF_SYSCALL_EXECVEAT : EF_SYSCALL_EXECVE, filename, argv, envp, dirfd,
		     at_flags, st, false);
	after_failure(tid, st, ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_execve")
int tp_exit_execve(struct trace_event_raw_sys_exit *ctx)
{
	return on_syscall_exit(ctx->ret, false);
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int tp_exit_execveat(struct trace_event_raw_sys_exit *ctx)
{
	return on_syscall_exit(ctx->ret, true);
}

/* fentry mode */

/*
 * Returns for the binary and for every interpreter; the first file is the
 * binary. Raw context: the return value is all that is needed.
 */
SEC("fexit/do_open_execat")
int fexit_open(__u64 *ctx)
{
	__u64 ret = 0;

	bpf_get_func_ret(ctx, &ret);
	on_open_ret(ret);
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

static __always_inline void on_kernel_execve_ret(const char *filename, const char *const *argv,
						 const char *const *envp, long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct ef_task *st = bpf_map_lookup_elem(&tasks, &tid);

	if (ret < 0)
		emit_failure(ret, EF_SYSCALL_KERNEL, filename, argv, envp, AT_FDCWD, 0, st, true);
	if (st)
		bpf_map_delete_elem(&tasks, &tid);
}

/*
 * The helpers read the arguments: kernels before 6.13 refuse direct context
 * access to a pointer-to-pointer argument such as argv.
 */
SEC("fexit/kernel_execve")
int fexit_kernel_execve(__u64 *ctx)
{
	__u64 filename = 0, argv = 0, envp = 0, ret = 0;

	bpf_get_func_arg(ctx, 0, &filename);
	bpf_get_func_arg(ctx, 1, &argv);
	bpf_get_func_arg(ctx, 2, &envp);
	bpf_get_func_ret(ctx, &ret);
	on_kernel_execve_ret((const char *)filename, (const char *const *)argv,
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
	on_kernel_execve_ret((const char *)a->filename, (const char *const *)a->argv,
			     (const char *const *)a->envp, ret);
	bpf_map_delete_elem(&kexec, &tid);
	return 0;
}
