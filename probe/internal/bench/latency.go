// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// measureLatency times failure → webhook delivery through the daemon on
// loopback: one failure at a time, each on a path of its own so no dedup
// window holds it, timed from just before the exec to the request's
// arrival.
func measureLatency(d *daemonObserver, dir string, samples int) (map[string][]time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("webhook receiver: %w", err)
	}
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		b, _ := io.ReadAll(r.Body)
		var ev struct {
			Path string `json:"path"`
		}
		json.Unmarshal(b, &ev)
		mu.Lock()
		if _, ok := arrived[ev.Path]; !ok {
			arrived[ev.Path] = now
		}
		mu.Unlock()
	})}
	go srv.Serve(ln)
	defer srv.Close()

	lat := filepath.Join(dir, "latency")
	os.MkdirAll(lat, 0o755)
	obs := *d
	obs.webhook = "http://" + ln.Addr().String() + "/"
	if err := obs.start(); err != nil {
		return nil, err
	}
	defer obs.stop()
	time.Sleep(500 * time.Millisecond)
	out := map[string][]time.Duration{}
	for _, errno := range []unix.Errno{unix.ENOENT, unix.EACCES} {
		name := unix.ErrnoName(errno)
		for i := range samples {
			p := filepath.Join(lat, fmt.Sprintf("%s-%d", name, i))
			if errno == unix.EACCES {
				if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o644); err != nil {
					return nil, err
				}
			}
			start := time.Now()
			if e := rawExecve(p); e != errno {
				return nil, fmt.Errorf("execve %s: got %v, want %v", p, e, errno)
			}
			for deadline := start.Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				mu.Lock()
				at, ok := arrived[p]
				mu.Unlock()
				if ok {
					out[name] = append(out[name], at.Sub(start))
					break
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return out, nil
}

// rawExecve calls execve(path, [base], []) and returns its errno.
func rawExecve(path string) unix.Errno {
	p, _ := unix.BytePtrFromString(path)
	a0, _ := unix.BytePtrFromString(filepath.Base(path))
	argv := []*byte{a0, nil}
	envv := []*byte{nil}
	_, _, e := unix.Syscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(p)),
		uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&envv[0])))
	return e
}
