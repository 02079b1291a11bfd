// SPDX-License-Identifier: Apache-2.0

package diagnose

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/execfaild/execfaild/probe/event"
)

// Machine is an ELF target: machine, word size and byte order.
type Machine struct {
	Machine elf.Machine
	Class   elf.Class
	Data    elf.Data
}

// Arch is what a kernel runs: its native programs, and those of its
// compat ABIs (32-bit x86 on x86_64, 32-bit Arm on arm64) when enabled.
type Arch struct {
	Native Machine
	Compat []Machine
}

// ArchOf is the Arch of a Go GOARCH; the daemon runs on the kernel's own
// architecture.
func ArchOf(goarch string) Arch {
	switch goarch {
	case "amd64":
		return Arch{
			Native: Machine{elf.EM_X86_64, elf.ELFCLASS64, elf.ELFDATA2LSB},
			Compat: []Machine{{elf.EM_386, elf.ELFCLASS32, elf.ELFDATA2LSB}, {elf.EM_X86_64, elf.ELFCLASS32, elf.ELFDATA2LSB}},
		}
	case "arm64":
		return Arch{
			Native: Machine{elf.EM_AARCH64, elf.ELFCLASS64, elf.ELFDATA2LSB},
			Compat: []Machine{{elf.EM_ARM, elf.ELFCLASS32, elf.ELFDATA2LSB}},
		}
	}
	return Arch{}
}

func (a Arch) compat(m Machine) bool {
	for _, c := range a.Compat {
		if c == m {
			return true
		}
	}
	return false
}

// elfHeader is what the first 20 bytes of an ELF file say.
type elfHeader struct {
	Machine
	Type elf.Type
}

func parseELF(head []byte) (elfHeader, bool) {
	if len(head) < 20 || !bytes.HasPrefix(head, []byte(elf.ELFMAG)) {
		return elfHeader{}, false
	}
	h := elfHeader{Machine: Machine{Class: elf.Class(head[elf.EI_CLASS]), Data: elf.Data(head[elf.EI_DATA])}}
	var order binary.ByteOrder = binary.LittleEndian
	if h.Data == elf.ELFDATA2MSB {
		order = binary.BigEndian
	}
	h.Type = elf.Type(order.Uint16(head[16:]))
	h.Machine.Machine = elf.Machine(order.Uint16(head[18:]))
	return h, true
}

func isELF(head []byte) bool { return bytes.HasPrefix(head, []byte(elf.ELFMAG)) }

func isShebang(head []byte) bool { return bytes.HasPrefix(head, []byte("#!")) }

var machineNames = map[elf.Machine]string{
	elf.EM_386: "i386", elf.EM_X86_64: "x86-64", elf.EM_AARCH64: "aarch64", elf.EM_ARM: "32-bit arm",
	elf.EM_RISCV: "riscv", elf.EM_PPC64: "ppc64", elf.EM_PPC: "ppc", elf.EM_S390: "s390",
	elf.EM_MIPS: "mips", elf.EM_LOONGARCH: "loongarch", elf.EM_SPARCV9: "sparc64",
}

// String names a machine the way its users do: "aarch64 (64-bit)".
func (m Machine) String() string {
	n, ok := machineNames[m.Machine]
	if !ok {
		n = fmt.Sprintf("ELF machine %d", uint16(m.Machine))
	}
	bits := "32-bit"
	if m.Class == elf.ELFCLASS64 {
		bits = "64-bit"
	}
	if m.Data == elf.ELFDATA2MSB {
		bits += ", big-endian"
	}
	return n + " (" + bits + ")"
}

// badFormat explains ENOEXEC: no binary format handler took the file.
func badFormat(ev *Evidence) Result {
	p := ev.Program
	if p.Head == nil {
		return Result{Cause: event.CauseUnknown, Inferred: true,
			Text: fmt.Sprintf("no binary format handler accepted %s (exec format error); its contents could not be read", name(p.Path))}
	}
	if isShebang(p.Head) {
		return badScript(ev)
	}
	r := formatOf(p, ev.Arch, name(p.Path))
	r.Inferred = !p.HeadKernel
	return r
}

// badScript: the script loader ran, so its interpreter is what no handler
// took (or the #! line names none).
func badScript(ev *Evidence) Result {
	p := ev.Program
	if ev.Interp == "" {
		return Result{Cause: event.CauseNotAProgram, Inferred: !p.HeadKernel,
			Text: fmt.Sprintf("%s starts with #! but names no interpreter: complete its first line, such as #!/bin/sh", name(p.Path))}
	}
	in := ev.Interpreter
	if in == nil || in.Head == nil {
		return Result{Cause: event.CauseUnknown, Inferred: true,
			Text: fmt.Sprintf("no binary format handler accepted the interpreter %s of the script %s (exec format error); it could not be read", name(ev.Interp), name(p.Path))}
	}
	r := formatOf(*in, ev.Arch, fmt.Sprintf("the interpreter %s of the script %s", name(ev.Interp), name(p.Path)))
	r.Inferred = true
	return r
}

// formatOf describes a file no handler took, by its first bytes; who is
// how the sentence names it.
func formatOf(f File, arch Arch, who string) Result {
	head := f.Head
	if len(head) == 0 {
		return Result{Cause: event.CauseNotAProgram, Text: who + " is empty: there is nothing to run"}
	}
	if h, ok := parseELF(head); ok {
		return elfFormat(h, arch, who)
	}
	if kind := sniff(head); kind != "" {
		return Result{Cause: event.CauseNotAProgram, Text: fmt.Sprintf("%s is %s, not a program", who, kind)}
	}
	if printable(head) {
		return Result{Cause: event.CauseNotAProgram, Text: fmt.Sprintf(
			"%s is text without a #! line (it starts with %q): execve runs no script without one; add a first line such as #!/bin/sh, or run it through its interpreter", who, excerpt(head))}
	}
	return Result{Cause: event.CauseNotAProgram, Text: fmt.Sprintf(
		"%s is neither an ELF program nor a script (it starts with bytes % x), and no binfmt_misc handler took it", who, head[:min(len(head), 8)])}
}

func elfFormat(h elfHeader, arch Arch, who string) Result {
	switch {
	case h.Machine != arch.Native && !arch.compat(h.Machine):
		return Result{Cause: event.CauseWrongArchitecture, Text: fmt.Sprintf(
			"%s is built for %s, and this machine runs %s: no binfmt_misc handler (such as qemu-user) took it; use a build for %s",
			who, h.Machine, arch.Native, arch.Native)}
	case h.Type == elf.ET_REL:
		return Result{Cause: event.CauseNotAProgram, Text: who + " is an ELF relocatable object (.o), not a program: link it into an executable"}
	case h.Type == elf.ET_CORE:
		return Result{Cause: event.CauseNotAProgram, Text: who + " is an ELF core dump, not a program"}
	case h.Type != elf.ET_EXEC && h.Type != elf.ET_DYN:
		return Result{Cause: event.CauseNotAProgram, Text: fmt.Sprintf("%s is an ELF file of type %d, not a program", who, uint16(h.Type))}
	case h.Machine != arch.Native:
		return Result{Cause: event.CauseWrongArchitecture, Text: fmt.Sprintf(
			"%s is built for %s, which this kernel refused: its support for %s programs may be disabled, and no binfmt_misc handler took it; use a build for %s",
			who, h.Machine, h.Machine, arch.Native)}
	}
	return Result{Cause: event.CauseUnknown, Text: fmt.Sprintf(
		"%s is an ELF program for %s, which this machine runs, but the ELF loader refused the rest of its headers (exec format error)", who, h.Machine)}
}

// sniff names a few formats people mistake for programs.
func sniff(head []byte) string {
	for _, m := range []struct{ magic, kind string }{
		{"MZ", "a Windows (PE) program"},
		{"\x1f\x8b", "a gzip archive"},
		{"PK\x03\x04", "a zip archive"},
		{"\xfd7zXZ\x00", "an xz archive"},
		{"BZh", "a bzip2 archive"},
		{"\x28\xb5\x2f\xfd", "a zstd archive"},
		{"!<arch>\n", "an ar archive (a static library or a .deb)"},
		{"\xcf\xfa\xed\xfe", "a macOS (Mach-O) program"},
		{"\xca\xfe\xba\xbe", "a macOS (Mach-O) universal program or a Java class"},
	} {
		if bytes.HasPrefix(head, []byte(m.magic)) {
			return m.kind
		}
	}
	t := strings.ToLower(strings.TrimLeft(string(head), " \t\r\n\ufeff"))
	if strings.HasPrefix(t, "<!doctype html") || strings.HasPrefix(t, "<html") {
		return "an HTML page"
	}
	return ""
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\n' && c != '\r' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// excerpt is the start of a text file's first line, at most 40 bytes.
func excerpt(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}
