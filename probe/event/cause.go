// SPDX-License-Identifier: Apache-2.0

package event

// Cause codes: a stable, machine-readable diagnosis of why an exec failed
// (Event.Cause). Operators filter, group and alert on them, so a code is
// never renamed; new causes are added, and anything the evidence does not
// explain is CauseUnknown rather than a guess.
const (
	CauseInterpreterMissing     = "interpreter-missing"      // ENOENT: the script's #! interpreter does not exist
	CauseInterpreterCRLF        = "interpreter-crlf"         // the #! line ends in \r (Windows line endings)
	CauseELFInterpreterMissing  = "elf-interpreter-missing"  // the ELF's PT_INTERP loader does not exist
	CauseWrongArchitecture      = "wrong-architecture"       // ELF for a machine/class this kernel cannot run
	CauseNotAProgram            = "not-a-program"            // ENOEXEC: neither ELF nor #! (text, archive, …)
	CauseNotExecutable          = "not-executable"           // EACCES: no execute permission for the caller
	CauseNoexecMount            = "noexec-mount"             // EACCES: the file is on a noexec mount
	CauseDirectoryNotSearchable = "directory-not-searchable" // EACCES on a path component
	CauseSecurityPolicy         = "security-policy"          // EACCES/EPERM from an LSM or seccomp
	CauseTextBusy               = "text-busy"                // ETXTBSY: the file is open for writing
	CauseArgumentListTooLong    = "argument-list-too-long"   // E2BIG
	CauseSymlinkLoop            = "symlink-loop"             // ELOOP
	CauseNotADirectory          = "not-a-directory"          // ENOTDIR
	CauseIsADirectory           = "is-a-directory"           // EISDIR, or EACCES on a directory
	CauseNotFoundInPath         = "not-found-in-path"        // a folded PATH search that found nothing
	CauseNotFound               = "not-found"                // plain ENOENT
	CauseUnknown                = "unknown"                  // anything else: the errno's own text
)

// Causes lists every cause code, for validation ([filter] causes) and
// documentation (one journal catalog entry per code).
var Causes = []string{
	CauseInterpreterMissing, CauseInterpreterCRLF, CauseELFInterpreterMissing,
	CauseWrongArchitecture, CauseNotAProgram, CauseNotExecutable, CauseNoexecMount,
	CauseDirectoryNotSearchable, CauseSecurityPolicy, CauseTextBusy,
	CauseArgumentListTooLong, CauseSymlinkLoop, CauseNotADirectory, CauseIsADirectory,
	CauseNotFoundInPath, CauseNotFound, CauseUnknown,
}
