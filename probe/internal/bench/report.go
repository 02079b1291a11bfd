// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// results gathers every round's figures per observer and workload.
type results struct {
	obs   []observer
	loads []workload
	ns    map[string][][]float64 // observer → workload → per round
	cpu   map[string][]uint64    // ticks, summed over rounds
	bpf   map[string][]progRuns  // the observer's BPF programs, summed over rounds
	seen  map[string][]uint64
	lost  map[string][]uint64
	known map[string]bool
	// perWorkload: the observer's lost counts are each workload's own
	perWorkload map[string]bool
	// daemon memory and idle wake-ups, per round
	idleMem, peakMem map[string][]memory
	idleWake         map[string][]idleSample
	rounds           map[string]int
	loadStart        string
	// shipped: each daemon's paced storm with its sink at the defaults
	shipped map[string]shippedStorm
}

func newResults(obs []observer, loads []workload) *results {
	r := &results{obs: obs, loads: loads, ns: map[string][][]float64{}, cpu: map[string][]uint64{}, bpf: map[string][]progRuns{},
		seen: map[string][]uint64{}, lost: map[string][]uint64{}, known: map[string]bool{}, perWorkload: map[string]bool{},
		idleMem: map[string][]memory{}, peakMem: map[string][]memory{}, idleWake: map[string][]idleSample{},
		rounds: map[string]int{}}
	for _, o := range obs {
		r.ns[o.name()] = make([][]float64, len(loads))
		r.cpu[o.name()] = make([]uint64, len(loads))
		r.bpf[o.name()] = make([]progRuns, len(loads))
		for i := range loads {
			r.bpf[o.name()][i] = progRuns{}
		}
		r.seen[o.name()] = make([]uint64, len(loads))
		r.lost[o.name()] = make([]uint64, len(loads))
	}
	return r
}

func (r *results) add(o observer, i int, ns float64, ticks uint64) {
	r.ns[o.name()][i] = append(r.ns[o.name()][i], ns)
	r.cpu[o.name()][i] += ticks
	if i == 0 {
		r.rounds[o.name()]++
	}
}

func (r *results) addBPF(o observer, i int, runs progRuns) {
	r.bpf[o.name()][i].add(runs)
}

func (r *results) count(o observer, i int, c counts) {
	if !c.known {
		return
	}
	r.known[o.name()] = true
	r.perWorkload[o.name()] = c.perWorkload
	r.seen[o.name()][i] += c.seen
	r.lost[o.name()][i] += c.lost
}

// idle samples a freshly started daemon: its resident memory once
// started, and how often it wakes with nothing to do.
func (r *results) idle(d *daemonObserver) error {
	time.Sleep(idleAfterStart)
	w, err := idleWakeups(d.pid(), d.metrics, idleSlices, time.Second)
	if err != nil {
		return err
	}
	r.idleWake[d.name()] = append(r.idleWake[d.name()], w)
	mem, err := readMemory(d.pid())
	if err != nil {
		return err
	}
	r.idleMem[d.name()] = append(r.idleMem[d.name()], mem)
	return nil
}

// peak samples the daemon after the workloads: its high-water mark, and
// what of it the BPF maps are.
func (r *results) peak(d *daemonObserver) error {
	mem, err := readMemory(d.pid())
	if err != nil {
		return err
	}
	mem.total = procStatus(d.pid(), "VmHWM")
	r.peakMem[d.name()] = append(r.peakMem[d.name()], mem)
	return nil
}

func (r *results) print(out io.Writer, rounds int, lat map[string][]time.Duration) {
	fmt.Fprintf(out, "execfaild bench  kernel %s  cpus %d  load %s at start, %s at end  rounds %d (observers alternated)\n",
		release(), numCPU(), r.loadStart, loadavg(), rounds)
	fmt.Fprintf(out, "caller ns/exec: median over rounds as the failing process measured it; ratio to bare from this run\n")
	fmt.Fprintf(out, "observer CPU: utime+stime of its process over the workload and its backlog, per failure provoked\n\n")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tobserver\texecs\tns/exec\tratio\tcpu µs/failure\tprovoked\tcounted\tlost (said)\taccounted\t")
	bareName := r.obs[0].name()
	for i, w := range r.loads {
		base := median(r.ns[bareName][i])
		for _, o := range r.obs {
			name := o.name()
			ns := median(r.ns[name][i])
			rounds := r.rounds[name]
			provoked := uint64(0)
			if w.failing() {
				provoked = uint64(w.n * rounds)
			}
			cpu, counted, lost, acc := "-", "-", "-", "-"
			if name != bareName && provoked > 0 {
				cpu = fmt.Sprintf("%.2f", float64(r.cpu[name][i])*1e6/clockTicks/float64(provoked))
			}
			if r.known[name] {
				counted = fmt.Sprint(r.seen[name][i])
				lost = fmt.Sprint(r.lost[name][i])
				if !r.perWorkload[name] {
					lost += " (round)"
				} else if provoked > 0 {
					acc = accounting(r.seen[name][i], r.lost[name][i], provoked).short()
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.2f\t%s\t%d\t%s\t%s\t%s\t\n", w.name, name, w.n*rounds, ns, ns/base, cpu, provoked, counted, lost, acc)
		}
	}
	tw.Flush()
	r.printBPF(out)
	fmt.Fprintln(out, "\nlost (said): execfaild's probe_lost_failures_total + probe_orphan_repeats_total and auditd's kernel lost counter,")
	fmt.Fprintln(out, "read before and after each workload (any program's losses meanwhile count too); bpftrace's \"Lost N events\" over")
	fmt.Fprintln(out, "the whole round.")
	fmt.Fprintln(out, "accounted: counted + lost against provoked (= exactly; -N missing; +N more, other programs' losses).")
	fmt.Fprintln(out, "execfaild counts come from its file sink and spool after a SIGTERM flush (digests and folded PATH searches carry")
	fmt.Fprintln(out, "their count); auditd's CPU excludes kauditd.")
	r.printDaemons(out)
	if len(lat) > 0 {
		fmt.Fprintln(out)
		tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "failure → loopback webhook\tsamples\tmedian ms\tmax ms\t")
		keys := make([]string, 0, len(lat))
		for k := range lat {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			v := lat[k]
			if len(v) == 0 {
				fmt.Fprintf(tw, "%s\t0\t-\t-\t\n", k)
				continue
			}
			f := make([]float64, len(v))
			for i, d := range v {
				f[i] = float64(d) / 1e6
			}
			fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t\n", k, len(v), median(f), slices.Max(f))
		}
		tw.Flush()
	}
	r.targets(out, lat)
}

// targets restates the storm targets with this run's figures for each
// execfaild build measured.
func (r *results) targets(out io.Writer, lat map[string][]time.Duration) {
	bareName := r.obs[0].name()
	ratio := func(name string, i int) float64 { return median(r.ns[name][i]) / median(r.ns[bareName][i]) }
	idx := func(name string) int {
		return slices.IndexFunc(r.loads, func(w workload) bool { return w.name == name })
	}
	for _, o := range r.obs {
		d, ok := o.(*daemonObserver)
		if !ok {
			continue
		}
		name := d.name()
		prov := func(i int) uint64 { return uint64(r.loads[i].n * r.rounds[name]) }
		rep, uni, acc, noexec, succ := idx("repeat ENOENT"), idx("unique ENOENT"), idx("EACCES"), idx("ENOEXEC"), idx("fork+exec ok")
		lms := func(k string) string {
			v := lat[name+" "+k]
			if len(v) == 0 {
				return "-"
			}
			f := make([]float64, len(v))
			for i, d := range v {
				f[i] = float64(d) / 1e6
			}
			return fmt.Sprintf("%.1f ms (median; max %.1f)", median(f), slices.Max(f))
		}
		fmt.Fprintf(out, "\ntargets, %s:\n", name)
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "workload\ttarget\tthis run\t")
		fmt.Fprintf(tw, "one path repeated, caller cost vs bare\t≤ 1.3×\t%.2f×\t\n", ratio(name, rep))
		fmt.Fprintf(tw, "one path repeated, counted / provoked\t100%%, exactly\t%d / %d (%.2f%%)\t\n", r.seen[name][rep], prov(rep), pct(r.seen[name][rep], prov(rep)))
		fmt.Fprintf(tw, "unique paths, caller cost vs bare\t≤ 1.8×\t%.2f×\t\n", ratio(name, uni))
		fmt.Fprintf(tw, "unique paths, counted + reported lost\tall accounted\t%s\t\n", accounting(r.seen[name][uni], r.lost[name][uni], prov(uni)))
		if i := slices.IndexFunc(r.loads, func(w workload) bool { return w.mode == "paced" }); i >= 0 {
			fmt.Fprintf(tw, "unique paths taken in without loss\t≥ 50k/s\t%s: %s\t\n", r.loads[i].name, intake(r.seen[name][i], r.lost[name][i], prov(i)))
		}
		fmt.Fprintf(tw, "EACCES / ENOEXEC caller cost\t≤ 1.3× / ≤ 1.1×\t%.2f× / %.2f×\t\n", ratio(name, acc), ratio(name, noexec))
		fmt.Fprintf(tw, "daemon CPU per repeated failure\t≤ 0.5 µs\t%.2f µs\t\n", float64(r.cpu[name][rep])*1e6/clockTicks/float64(prov(rep)))
		fmt.Fprintf(tw, "successful fork+exec\t≤ 1.02×\t%.2f×\t\n", ratio(name, succ))
		idle, peak := largest(r.idleMem[name]), largest(r.peakMem[name])
		fmt.Fprintf(tw, "daemon RSS: idle / storm\t≤ 20 / ≤ 40 MB\t%.1f / %.1f MB: BPF maps mapped %.1f / %.1f, the rest %.1f / %.1f\t\n",
			mb(idle.total), mb(peak.total), mb(idle.bpfMaps), mb(peak.bpfMaps), mb(idle.rest()), mb(peak.rest()))
		if s, ok := r.shipped[name]; ok {
			fmt.Fprintf(tw, "daemon RSS, paced storm, sink at its defaults\t≤ 40 MB\t%s\t\n", s)
		}
		fmt.Fprintf(tw, "daemon wake-ups when idle\tnone without pending work\t%s (context switches, all threads)\t\n", r.idleSum(name))
		fmt.Fprintf(tw, "failure → webhook on loopback, ENOENT\t≤ 50 ms, folding kept\t%s\t\n", lms("ENOENT"))
		fmt.Fprintf(tw, "failure → webhook on loopback, EACCES\t≤ 5 ms\t%s\t\n", lms("EACCES"))
		tw.Flush()
	}
	fmt.Fprintln(out, strings.Repeat("-", 20))
}

// intake says how much of a paced workload was taken in: all of it, or
// how much was lost.
func intake(counted, lost, provoked uint64) string {
	t := accounting(counted, lost, provoked)
	if lost == 0 && t.short() == "=" {
		return fmt.Sprintf("%d of %d counted, none lost", counted, provoked)
	}
	return t.String()
}

// printDaemons prints each daemon's memory and idle wake-ups.
func (r *results) printDaemons(out io.Writer) {
	fmt.Fprintln(out, "\nRSS MB: total (BPF maps the daemon has mapped + the rest). Idle: /proc/<pid>/smaps once started; peak: the")
	fmt.Fprintln(out, "total is VmHWM, the BPF maps' share read from smaps after the workloads. Largest over rounds, whose file")
	fmt.Fprintln(out, "sink queues up to 65536 notifications (dedup and limits off, so every failure keeps its path); the targets'")
	fmt.Fprintln(out, "\"sink at its defaults\" row is one more paced run with the sink as shipped.")
	fmt.Fprintln(out, "Wake-ups: context switches of all its threads while idle, in one-second slices outside the bench's scrapes,")
	fmt.Fprintf(out, "from %v after READY=1 on (the Go runtime's start-up tail ends about 1 s after start).\n", idleAfterStart)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "daemon\tidle RSS MB\tpeak RSS MB\tidle wake-ups\t")
	for _, o := range r.obs {
		name := o.name()
		if _, ok := r.idleMem[name]; !ok {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", name, largest(r.idleMem[name]), largest(r.peakMem[name]), r.idleSum(name))
	}
	tw.Flush()
}

// idleSum sums a daemon's idle slices over the rounds.
func (r *results) idleSum(name string) idleSample {
	var s idleSample
	for _, o := range r.idleWake[name] {
		s.add(o)
	}
	return s
}

// largest is the sample with the largest total.
func largest(ms []memory) memory {
	var m memory
	for _, x := range ms {
		if x.total > m.total {
			m = x
		}
	}
	return m
}

func pct(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

// printBPF splits what each BPF observer adds to the caller's exec into
// the time its hook programs ran (the kernel's own count) and the rest:
// the tracing path around them, and the observer contending for the CPUs.
// Then the programs one by one.
func (r *results) printBPF(out io.Writer) {
	bareName := r.obs[0].name()
	var withBPF []string
	for _, o := range r.obs {
		for _, pr := range r.bpf[o.name()] {
			if len(pr) > 0 {
				withBPF = append(withBPF, o.name())
				break
			}
		}
	}
	if len(withBPF) == 0 {
		return
	}
	fmt.Fprintln(out, "\nadded ns/exec: ns/exec minus bare's. in hooks: the observer's BPF programs' run time as the kernel counts it")
	fmt.Fprintln(out, "(kernel.bpf_stats_enabled, on for the whole run; the count itself adds a clock read or two per run), each")
	fmt.Fprintln(out, "program at its mean run time at most once per exec: a hook on every syscall's exit also runs for every other")
	fmt.Fprintln(out, "syscall on the machine (hook runs/exec counts those). rest: added minus hooks - the tracing path around the")
	fmt.Fprintln(out, "programs, and the observer contending for the CPUs and caches.")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tobserver\tadded ns/exec\tin hooks ns/exec\trest ns/exec\thook runs/exec\t")
	for i, w := range r.loads {
		base := median(r.ns[bareName][i])
		for _, name := range withBPF {
			execs := uint64(w.n * r.rounds[name])
			added := median(r.ns[name][i]) - base
			inHooks := r.bpf[name][i].inExecs(execs) / float64(execs)
			runs := float64(r.bpf[name][i].hookRuns()) / float64(execs)
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f\t%.0f\t%.2f\t\n", w.name, name, added, inHooks, added-inHooks, runs)
		}
	}
	tw.Flush()

	fmt.Fprintln(out, "\nBPF programs, ns/exec per workload (runs/exec in brackets); daemon-side: run by the observer itself")
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "observer\tprogram\t"
	for _, w := range r.loads {
		head += w.name + "\t"
	}
	fmt.Fprintln(tw, head)
	for _, name := range withBPF {
		progs := progRuns{}
		for _, pr := range r.bpf[name] {
			progs.add(pr)
		}
		for _, prog := range slices.Sorted(maps.Keys(progs)) {
			label := prog
			if progs[prog].daemonSide {
				label += " (daemon-side)"
			}
			row := name + "\t" + label + "\t"
			for i, w := range r.loads {
				execs := float64(w.n * r.rounds[name])
				p := r.bpf[name][i][prog]
				row += fmt.Sprintf("%.0f (%.2f)\t", float64(p.ns)/execs, float64(p.runs)/execs)
			}
			fmt.Fprintln(tw, row)
		}
	}
	tw.Flush()
}
