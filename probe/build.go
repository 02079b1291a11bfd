// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// build is one of bpf2go's builds of bpf/execfaild.bpf.c (gen.go) with what
// the probe sets and loads of it, taken from that build's generated typed
// specs and name constants: a program, map or variable the probe uses that
// a build no longer has breaks the Go build, not a load on some kernel.
// Names used for more than one build are checked against each by
// TestBuildsHaveWhatEveryModeAsks.
type build struct {
	name   string // default, legacy or perf
	legacy bool   // the legacy hook plan (legacy and perf builds)
	spec   *ebpf.CollectionSpec
	events *ebpf.MapSpec
	vars   limitVars

	// The default build only; nil in the others.
	folds         *ebpf.MapSpec
	foldSeen      *ebpf.MapSpec // admits a failure to folds on its second occurrence
	foldFlush     *ebpf.ProgramSpec
	seccompNative *ebpf.VariableSpec

	progs buildProgs
}

// buildProgs names the programs of a build that every mode keeps.
type buildProgs struct {
	// always: the verdict the tracepoints or raw sys_exit give, the flush
	// of folded repeats, and execDone.
	always   []string
	execDone string // ends a thread's exec attempt wherever it succeeded
	// rawVerdict is the legacy builds' verdict at the raw sys_exit
	// tracepoint: before 5.15 only it hands over the syscall's registers.
	rawVerdict string
}

// limitVars are the read-only variables every build has.
type limitVars struct {
	maxArgs, maxEnv, maxArgLen, captureEnv, fold, kernelPath *ebpf.VariableSpec
}

// loadBuild loads the spec of the build for the transport: perf, the
// legacy build, or the default one.
func loadBuild(transport string, legacy bool) (*build, error) {
	switch {
	case transport == TransportPerf:
		return perfBuild()
	case legacy:
		return legacyBuild()
	}
	return defaultBuild()
}

// assignSpec loads a build's spec and assigns it to its typed specs.
func assignSpec(load func() (*ebpf.CollectionSpec, error), specs any) (*ebpf.CollectionSpec, error) {
	spec, err := load()
	if err != nil {
		return nil, fmt.Errorf("load bpf spec: %w", err)
	}
	if err := spec.Assign(specs); err != nil {
		return nil, fmt.Errorf("load bpf spec: %w", err)
	}
	return spec, nil
}

func defaultBuild() (*build, error) {
	var s execfaildSpecs
	spec, err := assignSpec(loadExecfaild, &s)
	if err != nil {
		return nil, err
	}
	return &build{
		name: "default", spec: spec, events: s.Events,
		vars:  limitVars{s.MaxArgs, s.MaxEnv, s.MaxArgLen, s.CaptureEnv, s.Fold, s.KernelPath},
		folds: s.Folds, foldSeen: s.FoldSeen, foldFlush: s.FoldFlush, seccompNative: s.SeccompNative,
		progs: buildProgs{
			always:   []string{tpVerdict[0].prog, tpVerdict[1].prog, execfaildProgFoldFlush, execfaildProgRawExecDone},
			execDone: execfaildProgRawExecDone,
		},
	}, nil
}

func legacyBuild() (*build, error) {
	var s execfaildlegacySpecs
	spec, err := assignSpec(loadExecfaildlegacy, &s)
	if err != nil {
		return nil, err
	}
	return &build{
		name: "legacy", legacy: true, spec: spec, events: s.Events,
		vars: limitVars{s.MaxArgs, s.MaxEnv, s.MaxArgLen, s.CaptureEnv, s.Fold, s.KernelPath},
		progs: buildProgs{
			always:     []string{execfaildlegacyProgRawExitLegacy, execfaildlegacyProgRawExecDone},
			execDone:   execfaildlegacyProgRawExecDone,
			rawVerdict: execfaildlegacyProgRawExitLegacy,
		},
	}, nil
}

// perfBuild is the legacy build sending through a perf event array.
func perfBuild() (*build, error) {
	var s execfaildperfSpecs
	spec, err := assignSpec(loadExecfaildperf, &s)
	if err != nil {
		return nil, err
	}
	return &build{
		name: "perf", legacy: true, spec: spec, events: s.Events,
		vars: limitVars{s.MaxArgs, s.MaxEnv, s.MaxArgLen, s.CaptureEnv, s.Fold, s.KernelPath},
		progs: buildProgs{
			always:     []string{execfaildperfProgRawExitLegacy, execfaildperfProgRawExecDone},
			execDone:   execfaildperfProgRawExecDone,
			rawVerdict: execfaildperfProgRawExitLegacy,
		},
	}, nil
}

// Maps looked up in the loaded collection; every build has them.
const (
	eventsMap = execfaildMapEvents
	lostMap   = execfaildMapLost
)
