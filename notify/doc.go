// SPDX-License-Identifier: Apache-2.0

// Package notify turns failed execs into notifications and delivers them.
//
// A Pipeline runs these stages, in order:
//
//  1. the global [filter];
//  2. PATH-search coalescing: an execvp-style lookup fails with ENOENT once
//     per $PATH directory before it finds the program. Absolute-path
//     ENOENTs of one thread wait up to PathSearchHold; a later successful
//     exec of that thread (event.Success) of the same program name drops
//     them, anything else (another program's success included) ends
//     the search and one notification with Tried (the directories) and
//     Count (the failures) goes on;
//  3. per sink: its own filter, dedup (first occurrence at once, repeats
//     as one digest when the window ends) and a token bucket, plus a
//     global bucket across sinks. What a limit or a full queue holds back
//     is folded into a later notification's Count, never dropped;
//  4. per sink: a bounded queue and one worker calling Sink.Send. A
//     retryable error moves the notification, and everything behind it,
//     to the sink's spool directory (one JSON event per file), retried
//     with backoff and replayed at the next start; a permanent error is
//     counted as failed and logged. A sink made of Replicas (the replicas
//     of an Alertmanager cluster) has one queue, worker and spool per
//     replica, and a copy of every notification goes to each.
//
// Before stage 1 every failure is stamped with the configured host and
// static labels, so each sink says the same about where it happened.
//
// Counting is exact: every failure given to Handle is filtered, resolved
// by a PATH search, or part of exactly one notification's Count per sink
// it passed. Sinks live in sub-packages and register themselves with
// RegisterSink.
package notify
