// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// shippedStorm is what a daemon did with the paced workload when its file
// sink was left at the shipped defaults: queue size, dedup window and rate
// limits as an operator gets them. The rounds set the queue to its maximum
// and the limits off, so that every failure keeps its path and is counted
// by workload, and a full queue there holds tens of megabytes; here
// overflow is folded into digests, some of them combined ones that name
// no path.
type shippedStorm struct {
	peak memory
	// seen: counted in notifications about the workload's paths;
	// combined: in combined digests, which name no path.
	seen, combined, lost, provoked uint64
}

// shippedStorms runs the paced workload once against each daemon with a
// file sink at the defaults; none when there is no paced workload.
func shippedStorms(obs []observer, loads []workload) (map[string]shippedStorm, error) {
	out := map[string]shippedStorm{}
	i := slices.IndexFunc(loads, func(w workload) bool { return w.mode == "paced" })
	if i < 0 {
		return out, nil
	}
	w := loads[i]
	for _, o := range obs {
		d, ok := o.(*daemonObserver)
		if !ok {
			continue
		}
		s, err := shippedRun(*d, w)
		if err != nil {
			return nil, fmt.Errorf("storm at the shipped limits, %s: %w", d.label, err)
		}
		out[d.label] = s
	}
	return out, nil
}

func shippedRun(d daemonObserver, w workload) (shippedStorm, error) {
	s := shippedStorm{provoked: uint64(w.n)}
	d.shipped = true
	if err := d.start(); err != nil {
		return s, err
	}
	stopped := false
	defer func() {
		if !stopped {
			d.stop()
		}
	}()
	lost0, err := d.lostSoFar()
	if err != nil {
		return s, err
	}
	if _, _, err := measure(w); err != nil {
		return s, err
	}
	settle(d.pid())
	time.Sleep(d.lossLag())
	lost1, err := d.lostSoFar()
	if err != nil {
		return s, err
	}
	s.lost = lost1 - lost0
	if s.peak, err = readMemory(d.pid()); err != nil {
		return s, err
	}
	s.peak.total = procStatus(d.pid(), "VmHWM")
	stopped = true
	if err := d.stop(); err != nil {
		return s, err
	}
	s.seen, s.combined, err = countAll(d.events, w)
	return s, err
}

// countAll sums the counts of the notifications about w's paths, and
// apart those of combined digests (no path).
func countAll(events []byte, w workload) (seen, combined uint64, err error) {
	sc := bufio.NewScanner(strings.NewReader(string(events)))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev struct {
			Path  *string `json:"path"`
			Count uint64  `json:"count"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return 0, 0, fmt.Errorf("file sink line: %w", err)
		}
		switch {
		case ev.Path == nil:
			combined += max(ev.Count, 1)
		case strings.HasPrefix(*ev.Path, w.dir+"/"):
			seen += max(ev.Count, 1)
		}
	}
	return seen, combined, sc.Err()
}

// String is the storm's row of the targets table.
func (s shippedStorm) String() string {
	return fmt.Sprintf("%.1f MB (BPF maps %.1f, the rest %.1f); %s, %d of them in combined digests",
		mb(s.peak.total), mb(s.peak.bpfMaps), mb(s.peak.rest()), accounting(s.seen+s.combined, s.lost, s.provoked), s.combined)
}
