// SPDX-License-Identifier: Apache-2.0

package event

import "time"

// Synthetic returns a representative failure for tests, golden files and
// `execfaild test-sinks`: a CRLF script whose interpreter does not exist,
// run by a systemd service, with argv that a careless sink would mangle.
// Its diagnosis names the interpreter with its raw carriage return, as a
// diagnosis of a real failure would, so every sink shows how it escapes it.
func Synthetic(now time.Time, host string) Event {
	loginuid := uint32(1000)
	mode := uint32(0o20620)
	e := Event{
		Time:              now,
		Host:              host,
		Syscall:           SyscallExecve,
		Stage:             StageLoader,
		Path:              "./deploy.sh",
		InterpreterPath:   "/bin/bash\r",
		InterpreterSource: SourceKernel,
		Cause:             CauseInterpreterCRLF,
		CauseText:         "the script /srv/app/deploy.sh has Windows (CRLF) line endings, so its interpreter \"/bin/bash\r\" does not exist; convert it with dos2unix /srv/app/deploy.sh",
		Binary: &Binary{
			Path:        "/srv/app/deploy.sh",
			DeviceID:    2049,
			InodeNumber: 131074,
			Ctime:       uint64(now.Add(-time.Hour).UnixNano()),
			InodeMode:   0o100755,
			Source:      SourceKernel,
		},
		StdinType: "chr",
		StdinMode: &mode,
		StdinPath: "/dev/pts/0",
		Arguments: []string{"./deploy.sh", "--target=<prod> & \"all\"", "]\\x"},
		Environment: []string{
			"PATH=/usr/local/bin:/usr/bin:/bin",
			"TOKEN=<redacted>",
		},
		EnvironmentRedacted: true,
		Process: Process{
			PID: 4242, TID: 4242, PPID: 4200,
			UID: 1000, GID: 1000, EUID: 1000,
			LoginUID: &loginuid,
			Comm:     "deployer",
			Exe:      "/usr/bin/deployer",
			Cwd:      "/srv/app",
			CgroupID: 5123,
			Cgroup:   "/system.slice/deployer.service",
			Unit:     "deployer.service",
		},
		Parent: &Parent{PID: 4200, Comm: "systemd", Exe: "/usr/lib/systemd/systemd"},
		Count:  1,
	}
	e.SetErrno(-2)
	return e
}

// SyntheticDigest is Synthetic folded into a digest: 37 repeats over the
// ten minutes after first, from four callers. Golden files of every sink
// render it.
func SyntheticDigest(first time.Time, host string) Event {
	e := Synthetic(first, host)
	last := first.Add(10 * time.Minute)
	e.Time = last
	e.Digest = true
	e.Count = 37
	e.FirstSeen, e.LastSeen = &first, &last
	e.PIDs = []uint32{4242, 4250, 4251, 4307}
	return e
}
