// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// progRun is what the kernel counted of one BPF program: how often it ran
// and for how long, in nanoseconds. daemonSide marks a program the
// observer runs itself (BPF_PROG_TYPE_SYSCALL), not a hook run in the
// caller's exec.
type progRun struct {
	runs, ns   uint64
	daemonSide bool
}

// progRuns maps an observer's BPF programs, by name, to their counters.
type progRuns map[string]progRun

// enableBPFStats makes the kernel count every BPF program's runs and run
// time (kernel.bpf_stats_enabled, held through a file descriptor: it drops
// back when the bench exits, however it exits). The count costs two clock
// reads per program run, charged to the observers that run programs.
func enableBPFStats() (io.Closer, error) {
	c, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return nil, fmt.Errorf("enable BPF run-time statistics: %w", err)
	}
	return c, nil
}

// bpfPrograms reads the counters of the BPF programs process pid holds,
// found through its descriptors: programs and the links attaching them
// name a program id in their fdinfo.
func bpfPrograms(pid int) progRuns {
	out := progRuns{}
	if pid == 0 {
		return out
	}
	dir := fmt.Sprintf("/proc/%d/fdinfo", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return out
	}
	seen := map[ebpf.ProgramID]bool{}
	for _, ent := range ents {
		id, ok := fdinfoProgID(dir + "/" + ent.Name())
		if !ok || seen[id] {
			continue
		}
		seen[id] = true
		name, run, ok := programRun(id)
		if !ok {
			continue
		}
		r := out[name]
		r.runs += run.runs
		r.ns += run.ns
		r.daemonSide = run.daemonSide
		out[name] = r
	}
	return out
}

func fdinfoProgID(file string) (ebpf.ProgramID, bool) {
	f, err := os.Open(file)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "prog_id:"); ok {
			id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
			return ebpf.ProgramID(id), err == nil
		}
	}
	return 0, false
}

func programRun(id ebpf.ProgramID) (string, progRun, bool) {
	p, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return "", progRun{}, false
	}
	defer p.Close()
	st, err := p.Stats()
	if err != nil {
		return "", progRun{}, false
	}
	name := fmt.Sprint(id)
	if info, err := p.Info(); err == nil && info.Name != "" {
		name = info.Name
	}
	return name, progRun{runs: st.RunCount, ns: uint64(st.Runtime), daemonSide: p.Type() == ebpf.Syscall}, true
}

// since is what ran between an earlier reading and this one.
func (now progRuns) since(before progRuns) progRuns {
	out := progRuns{}
	for name, r := range now {
		b := before[name]
		if r.runs > b.runs {
			out[name] = progRun{runs: r.runs - b.runs, ns: r.ns - b.ns, daemonSide: r.daemonSide}
		}
	}
	return out
}

// add sums other into pr.
func (pr progRuns) add(other progRuns) {
	for name, r := range other {
		t := pr[name]
		t.runs += r.runs
		t.ns += r.ns
		t.daemonSide = r.daemonSide
		pr[name] = t
	}
}

// inExecs estimates the hooks' run time inside execs failing execs
// times: a program runs at most once in an exec's own path (the syscall's
// exit), but one on every syscall's exit also runs for every other
// syscall on the machine, the observer's own included, on other CPUs. So
// each program counts at its mean run time, at most once per exec.
func (pr progRuns) inExecs(execs uint64) (ns float64) {
	for _, r := range pr {
		if r.daemonSide || r.runs == 0 {
			continue
		}
		ns += float64(r.ns) / float64(r.runs) * float64(min(r.runs, execs))
	}
	return ns
}

// hookRuns counts the hooks' runs, wherever they ran.
func (pr progRuns) hookRuns() (runs uint64) {
	for _, r := range pr {
		if !r.daemonSide {
			runs += r.runs
		}
	}
	return runs
}
