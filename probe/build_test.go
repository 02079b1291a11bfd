// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"testing"

	"github.com/cilium/ebpf"
)

// kernelsForPlans are the kernels fentry mode plans for: one with every
// function the hooks name, one with none, and one with each hook's
// alternative function only.
func kernelsForPlans() map[string]func(string) bool {
	alts := map[string]bool{}
	for _, h := range execHooks {
		if h.alt != "" {
			alts[h.fn] = true
		}
	}
	return map[string]func(string) bool{
		"every function":   func(string) bool { return true },
		"no function":      func(string) bool { return false },
		"alternative only": func(fn string) bool { return !alts[fn] },
	}
}

// askedPrograms are the programs attach can ask the loaded collection for
// under plan pl: the verdict, the exec-done hook and the planned hooks.
func askedPrograms(b *build, pl programPlan, mode string) []string {
	asked := []string{b.progs.execDone}
	if b.legacy {
		asked = append(asked, b.progs.rawVerdict)
	} else {
		// The tracepoints stand in when the fexit verdict fails to attach.
		asked = append(asked, tpVerdict[0].prog, tpVerdict[1].prog)
		if mode == ModeTracepoint && compatRawTracepoint != "" {
			asked = append(asked, compatRawTracepoint)
		}
	}
	if pl.fexitVerdict {
		asked = append(asked, verdictFexit[0].prog, verdictFexit[1].prog)
	}
	for _, ph := range pl.hooks {
		if ph.missing != "" {
			continue
		}
		asked = append(asked, ph.prog)
		if mode == ModeKprobe && ph.spec.kretprobe != "" {
			asked = append(asked, ph.spec.kretprobe)
		}
		if mode == ModeKprobe && ph.spec.alt != "" {
			// attachKprobe falls back to the alternative.
			asked = append(asked, ph.spec.kprobeFn)
		}
	}
	return asked
}

// TestBuildsHaveWhatEveryModeAsks plans every mode each build can run in
// and checks that the build has every program the plan loads and attach
// can ask for, and every map and variable the probe sets or looks up: a
// name the C source lost in one build only fails here rather than at load
// time on the kernels that get that build.
func TestBuildsHaveWhatEveryModeAsks(t *testing.T) {
	builds := map[string]func() (*build, error){"default": defaultBuild, "legacy": legacyBuild, "perf": perfBuild}
	for name, load := range builds {
		b, err := load()
		if err != nil {
			t.Fatalf("%s build: %v", name, err)
		}
		if b.name != name || b.legacy != (name != "default") {
			t.Errorf("%s build: name %q, legacy %v", name, b.name, b.legacy)
		}
		checkBuildSpecs(t, b)
		plans := 0
		for _, mode := range []string{ModeFentry, ModeKprobe, ModeTracepoint} {
			for _, forceLegacy := range []bool{false, true} {
				if forceLegacy && (!b.legacy || mode != ModeKprobe) {
					continue // legacy mode is kprobe mode with a legacy build
				}
				for kernel, funcs := range kernelsForPlans() {
					if mode != ModeFentry && kernel != "every function" {
						continue // only fentry mode reads the kernel's BTF
					}
					pl := planPrograms(b.legacy, forceLegacy, mode, b.progs, funcs)
					where := name + " build, " + mode + " mode, kernel with " + kernel
					if forceLegacy {
						where += ", forced legacy"
					}
					checkPlan(t, b, pl, mode, where)
					plans++
				}
			}
		}
		want := 5 // fentry on the three kernels, kprobe, tracepoint
		if b.legacy {
			want++ // legacy mode
		}
		if plans != want {
			t.Errorf("%s build: %d plans checked, want %d", name, plans, want)
		}
	}
}

// checkPlan: every program pl loads is in the build, and every program
// attach can ask for is loaded.
func checkPlan(t *testing.T, b *build, pl programPlan, mode, where string) {
	t.Helper()
	for prog := range pl.keep {
		if b.spec.Programs[prog] == nil {
			t.Errorf("%s: loads program %q, which the build does not have", where, prog)
		}
	}
	for _, prog := range askedPrograms(b, pl, mode) {
		if !pl.keep[prog] {
			t.Errorf("%s: attach can ask for program %q, which is not loaded", where, prog)
		}
	}
	if !b.legacy && mode == ModeFentry && pl.fexitVerdict == (pl.fexitVerdictMissing != "") {
		t.Errorf("%s: fexit verdict %v, missing %q", where, pl.fexitVerdict, pl.fexitVerdictMissing)
	}
}

// checkBuildSpecs: the maps and variables the probe sets before loading
// are the build's own, and the maps it looks up after loading exist.
func checkBuildSpecs(t *testing.T, b *build) {
	t.Helper()
	for _, m := range []string{eventsMap, lostMap} {
		if b.spec.Maps[m] == nil {
			t.Errorf("%s build: no map %q", b.name, m)
		}
	}
	if b.events != b.spec.Maps[eventsMap] {
		t.Errorf("%s build: events spec is not the spec's map %q", b.name, eventsMap)
	}
	v := b.vars
	for _, vs := range []*ebpf.VariableSpec{v.maxArgs, v.maxEnv, v.maxArgLen, v.captureEnv, v.fold, v.kernelPath} {
		if vs == nil || b.spec.Variables[vs.Name] != vs {
			t.Errorf("%s build: variable %v is not the spec's own", b.name, vs)
		}
	}
	defaultOnly := b.folds != nil && b.foldSeen != nil && b.foldFlush != nil && b.seccompNative != nil
	if defaultOnly == b.legacy {
		t.Errorf("%s build: folds %v, fold_seen %v, fold flush %v, seccomp_native %v", b.name, b.folds != nil, b.foldSeen != nil, b.foldFlush != nil, b.seccompNative != nil)
	}
	if !b.legacy && b.spec.Programs[foldFlushProg] != b.foldFlush {
		t.Errorf("%s build: fold flush is not the spec's program %q", b.name, foldFlushProg)
	}
}
