// SPDX-License-Identifier: Apache-2.0

package journal

import "github.com/execfaild/execfaild/probe/event"

// CauseMessageIDs is each cause's MESSAGE_ID, keying its entry in
// packaging/execfaild.catalog, where journalctl -x finds the explanation
// and the fix. Never change one: operators filter on them. A new cause
// gets a new id (journalctl --new-id128) and a catalog entry; a test
// keeps the two in step.
var CauseMessageIDs = map[string]string{
	event.CauseInterpreterMissing:     "82752470248d4f51a6beab21d8e7d2c4",
	event.CauseInterpreterCRLF:        "e242a172922a4677a9154f087f458585",
	event.CauseELFInterpreterMissing:  "195d1b3c22a94c80a6aec20bdfdb23c4",
	event.CauseWrongArchitecture:      "8445dfb4987742f1a73183d034c95bf5",
	event.CauseNotAProgram:            "aca80f21d7a5432884da5c3c2459401a",
	event.CauseNotExecutable:          "36343e529f3945f8a804d48b84019c68",
	event.CauseNoexecMount:            "138cf397135f42b9a8edc0bd91c09359",
	event.CauseDirectoryNotSearchable: "84560005ad5144a9bafbb142f12c703b",
	event.CauseSecurityPolicy:         "d5dec602755f459d9035a4692b5d3936",
	event.CauseTextBusy:               "946429acda5f49ffa3e855edb8f37432",
	event.CauseArgumentListTooLong:    "95510840edd944c0a73f32fad2fc08ab",
	event.CauseSymlinkLoop:            "af9d8e12602c417999d798bd6e8e856b",
	event.CauseNotADirectory:          "fd94f69b44cb4183a73709f9b98ef35b",
	event.CauseIsADirectory:           "a1ceb6e94bd34d288bb3e1d007ebd8a4",
	event.CauseNotFoundInPath:         "2c81eb599c354c7092d8517cf8159e35",
	event.CauseNotFound:               "5f8348d8696b47419e2d2fae6b022c20",
	event.CauseUnknown:                "5521b68ce7474135b2946d9f7537402e",
}

// MessageIDOf is the MESSAGE_ID of ev's entry: its cause's, or MessageID
// for a failure without one (a digest of failures with different causes,
// a notification spooled before causes existed).
func MessageIDOf(ev *event.Event) string {
	if ev.Test {
		return TestMessageID
	}
	if id, ok := CauseMessageIDs[ev.Cause]; ok {
		return id
	}
	return MessageID
}
