// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/execfaild/execfaild/probe/event"
)

// spool keeps one sink's undelivered notifications on disk, one JSON file
// each, named by a zero-padded sequence number so that lexical order is
// arrival order. It is bounded: when
// full, the oldest entry is merged into the next oldest so its count is
// reported later instead of vanishing.
type spool struct {
	mu         sync.Mutex
	dir        string
	maxBytes   int64
	maxEntries int
	maxPIDs    int
	names      []string
	sizes      map[string]int64
	bytes      int64
	seq        uint64
	inflight   string // entry head handed out and not yet popped or kept
	// gone are entries delivered (or given up on) whose file could not be
	// removed (an immutable file, a read-only remount): skipped until the
	// next start instead of being sent again and again.
	gone map[string]bool
	// dropped counts entries lost to unreadable or implausible content,
	// set aside or deleted; the worker reports it.
	dropped uint64
	log     *slog.Logger
}

// maxSeq keeps sequence numbers far from wrapping: a name beyond it
// (planted or corrupt) is set aside, so the next entry can never be
// numbered below the live ones and overtake them.
const maxSeq = 1_000_000_000_000_000_000

// maxSpoolCount is more failures than one entry can honestly stand for; a
// larger count read from disk is corruption.
const maxSpoolCount = 1 << 48

// The points at which a crash leaves a distinct state on disk. A test
// kills a process at each of them (crashAt) rather than hoping that kills
// at random times land on all of them.
const (
	crashNewTemp      = "new entry: temporary file synced"
	crashNewRenamed   = "new entry: renamed into place"
	crashNewAbsorbed  = "new entry: an entry merged into it removed"
	crashMergeTemp    = "merged entry: temporary file synced"
	crashMergeRenamed = "merged entry: renamed into place"
	crashMergeDropped = "merged entry: the oldest entry removed"
)

// crashAt is called at each crash point; only tests set it.
var crashAt = func(point string) {}

func openSpool(dir string, maxBytes int64, maxEntries, maxPIDs int) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create spool: %w", err)
	}
	s := &spool{dir: dir, maxBytes: maxBytes, maxEntries: max(maxEntries, 1), maxPIDs: maxPIDs,
		gone: map[string]bool{}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := s.rescan(false); err != nil {
		return nil, err
	}
	return s, nil
}

// rescan reloads the entry list from disk: a reload's outgoing worker may
// have spooled into the same directory after this spool was opened. Only
// the worker that owns the directory from now on may clean up (cleanup):
// before that, a temporary file may be another worker's write in progress.
func (s *spool) rescan(cleanup bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("read spool: %w", err)
	}
	s.names, s.sizes, s.bytes = nil, map[string]int64{}, 0
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			if cleanup {
				// A temporary file a crash left behind: never renamed, so
				// never acknowledged as spooled.
				os.Remove(filepath.Join(s.dir, name))
			}
			continue
		}
		if !strings.HasSuffix(name, ".json") || !e.Type().IsRegular() || s.gone[name] {
			continue
		}
		// A sequence number, not a time, orders entries: the wall clock
		// may step back between runs.
		n, err := strconv.ParseUint(strings.TrimSuffix(name, ".json"), 10, 64)
		if err != nil || n > maxSeq {
			if cleanup {
				s.dropped++
				s.setAside(name, "name is not a sequence number below 10^18")
			}
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		s.names = append(s.names, name)
		s.sizes[name] = info.Size()
		s.bytes += info.Size()
		s.seq = max(s.seq, n)
	}
	slices.Sort(s.names)
	if cleanup {
		s.finishMerges()
	}
	return nil
}

// finishMerges removes entries that a merge absorbed before a crash could
// remove them.
func (s *spool) finishMerges() {
	live := map[string]bool{}
	for _, n := range s.names {
		live[n] = true
	}
	for _, n := range slices.Clone(s.names) {
		if !live[n] {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, n))
		if err != nil {
			continue
		}
		var e struct {
			Absorbed []string `json:"spool_absorbed"`
		}
		if json.Unmarshal(b, &e) != nil {
			continue
		}
		for _, a := range e.Absorbed {
			if live[a] && a < n {
				s.log.Warn("spool entry merged before a crash, removed now", "entry", filepath.Join(s.dir, a))
				s.drop(a)
				delete(live, a)
			}
		}
	}
}

func (s *spool) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.names)
}

// put appends ev. It returns how many older entries were merged away to
// make room (their counts live on in the entry they were merged into, or in
// ev). On error ev is not spooled, and neither are the entries merged into
// it: the caller reports them lost with ev's count.
func (s *spool) put(ev *event.Event) (merged int, err error) {
	_, merged, err = s.putNamed(ev)
	return merged, err
}

// putNamed is put that also returns the new entry's name.
func (s *spool) putNamed(ev *event.Event) (name string, merged int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := json.Marshal(ev)
	if err != nil {
		return "", 0, fmt.Errorf("encode spool entry: %w", err)
	}
	// Entries merged into ev are removed only once ev is on disk: a crash
	// in between reports them twice rather than never.
	var mergedIntoEv, absorbed []string
	defer func() {
		for _, name := range mergedIntoEv {
			s.remove(name)
			crashAt(crashNewAbsorbed)
		}
	}()
	for len(s.names) > s.first() && (len(s.names)+1 > s.maxEntries || s.bytes+int64(len(b)) > s.maxBytes) {
		into, kept, err := s.evictOldest(ev)
		if err != nil {
			return "", merged, err
		}
		if into != "" {
			mergedIntoEv = append(mergedIntoEv, into)
			absorbed = append(absorbed, into)
		}
		absorbed = append(absorbed, kept...)
		merged++
		if b, err = encodeEntry(ev, absorbed); err != nil {
			return "", merged, err
		}
	}
	if s.seq >= maxSeq {
		return "", merged, errors.New("spool sequence numbers exhausted")
	}
	s.seq++
	name = fmt.Sprintf("%020d.json", s.seq)
	if err := s.write(name, b, crashNewTemp, crashNewRenamed); err != nil {
		return "", merged, err
	}
	s.names = append(s.names, name)
	return name, merged, nil
}

// first is the index of the oldest entry eviction may touch: the one the
// worker is sending right now must stay as it is, or a delivery that
// succeeds would also be reported again (or lost) through a merge.
func (s *spool) first() int {
	if s.inflight != "" && len(s.names) > 0 && s.names[0] == s.inflight {
		return 1
	}
	return 0
}

// evictOldest merges the oldest evictable entry into the next one, or into
// the new entry ev when it is the last one; then it returns the oldest's
// name, for put to remove once ev is written, and the entries ev must list
// as absorbed besides it (kept).
func (s *spool) evictOldest(ev *event.Event) (mergedIntoEv string, kept []string, err error) {
	i := s.first()
	oldest, oldestKept, err := s.readEntry(s.names[i])
	if err != nil {
		// Unreadable: nothing to carry over; delete it so the spool can
		// move, and say so.
		s.lost(s.names[i], err)
		return "", nil, nil
	}
	if len(s.names) == i+1 {
		asDigest(ev).merge(oldest, s.maxPIDs)
		name := s.names[i]
		s.forget(name)
		return name, oldestKept, nil
	}
	next, nextKept, err := s.readEntry(s.names[i+1])
	if err != nil {
		s.lost(s.names[i+1], err)
		return "", nil, nil
	}
	// The merged entry keeps the place of the older one so nothing
	// overtakes it; it is written before the oldest goes, so a crash in
	// between counts the oldest twice rather than never.
	asDigest(oldest).merge(next, s.maxPIDs)
	absorbed := append(append([]string{s.names[i]}, oldestKept...), nextKept...)
	b, err := encodeEntry(oldest, absorbed)
	if err != nil {
		return "", nil, err
	}
	keep := s.names[i+1]
	old := s.sizes[keep]
	if err := s.write(keep, b, crashMergeTemp, crashMergeRenamed); err != nil {
		return "", nil, err
	}
	s.bytes -= old
	s.drop(s.names[i])
	crashAt(crashMergeDropped)
	return "", nil, nil
}

// entry is a spool file: the event, and the entries merged into it that
// may still be on disk. A crash after the merged entry was written and
// before those were removed would report them twice; the next start
// removes them instead (rescan). The key never reaches a sink: sinks get
// the decoded event.
type entry struct {
	*event.Event
	Absorbed []string `json:"spool_absorbed,omitempty"`
}

func encodeEntry(ev *event.Event, absorbed []string) ([]byte, error) {
	b, err := json.Marshal(entry{ev, absorbed})
	if err != nil {
		return nil, fmt.Errorf("encode spool entry: %w", err)
	}
	return b, nil
}

// write puts b into the entry name durably: written and synced under a
// temporary name, renamed, and the directory synced, so an entry that
// write reported is there after a power loss and a half-written one never
// is. On error nothing is left behind. synced and renamed name the crash
// points after each step.
func (s *spool) write(name string, b []byte, synced, renamed string) error {
	tmp := filepath.Join(s.dir, "."+name)
	if err := writeSynced(tmp, b); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write spool entry: %w", err)
	}
	crashAt(synced)
	if err := os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write spool entry: %w", err)
	}
	crashAt(renamed)
	if err := syncDir(s.dir); err != nil {
		// The entry is there and will be delivered; only a power loss
		// before the file system writes the directory back could lose it.
		s.log.Warn("spool directory not synced", "dir", s.dir, "err", err)
	}
	s.sizes[name] = int64(len(b))
	s.bytes += int64(len(b))
	return nil
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *spool) read(name string) (*event.Event, error) {
	ev, _, err := s.readEntry(name)
	return ev, err
}

// readEntry reads the entry name and returns, besides its event, the
// entries it absorbed whose files could not be removed (gone). An entry
// merging it must list them in turn: when this one goes, nothing else
// would tell the next start that their counts are already on disk, and
// they would be reported twice.
func (s *spool) readEntry(name string) (*event.Event, []string, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, name))
	if err != nil {
		return nil, nil, fmt.Errorf("read spool entry: %w", err)
	}
	var e entry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, nil, fmt.Errorf("decode spool entry %s: %w", name, err)
	}
	if err := plausible(e.Event); err != nil {
		return nil, nil, fmt.Errorf("spool entry %s: %w", name, err)
	}
	var kept []string
	for _, a := range e.Absorbed {
		if s.gone[a] {
			kept = append(kept, a)
		}
	}
	return e.Event, kept, nil
}

// plausible rejects what no run of the daemon writes: sending it would
// report an all-zero failure or a count nobody can trust.
func plausible(ev *event.Event) error {
	switch {
	case ev == nil:
		return errors.New("null")
	case ev.Time.IsZero():
		return errors.New("no time")
	case ev.ReturnValue > 0:
		return fmt.Errorf("return_value %d is not a negative errno", ev.ReturnValue)
	case ev.Count > maxSpoolCount:
		return fmt.Errorf("count %d is implausible", ev.Count)
	case ev.Count > 1 && !ev.Digest && len(ev.Tried) == 0 && (ev.FirstSeen == nil || ev.LastSeen == nil):
		// A folded PATH search counts its steps without being a digest,
		// and lists no directories when it repeated one or lost markers
		// left its outcome unknown; like a digest it always carries the
		// time range of what it counts.
		return fmt.Errorf("count %d without digest or time range", ev.Count)
	case len(ev.PIDs) > MaxPIDsLimit:
		return fmt.Errorf("%d pids listed", len(ev.PIDs))
	}
	return nil
}

// drop forgets and removes the entry name.
func (s *spool) drop(name string) {
	s.forget(name)
	s.remove(name)
}

// forget takes name out of the spool's accounting.
func (s *spool) forget(name string) {
	s.bytes -= s.sizes[name]
	delete(s.sizes, name)
	if i := slices.Index(s.names, name); i >= 0 {
		s.names = slices.Delete(s.names, i, i+1)
	}
}

// remove deletes name's file. When that fails the entry is remembered as
// gone: it must not be sent again by this run, and the error says why the
// file is still there.
func (s *spool) remove(name string) {
	err := os.Remove(filepath.Join(s.dir, name))
	if err == nil || errors.Is(err, os.ErrNotExist) {
		return
	}
	s.gone[name] = true
	s.log.Error("spool entry handled but not removed: it is skipped until the next start", "entry", filepath.Join(s.dir, name), "err", err)
}

// lost deletes an entry whose content cannot be read, counting it.
func (s *spool) lost(name string, why error) {
	s.dropped++
	s.log.Error("spool entry unreadable, deleted to make room", "entry", filepath.Join(s.dir, name), "err", why)
	s.drop(name)
}

// setAside renames an entry that must not be sent to name.bad, out of the
// way but there to inspect.
func (s *spool) setAside(name, why string) {
	from := filepath.Join(s.dir, name)
	if err := os.Rename(from, from+".bad"); err != nil {
		s.gone[name] = true
		s.log.Error("spool entry unusable and not set aside", "entry", from, "reason", why, "err", err)
		return
	}
	s.log.Error("spool entry unusable, set aside", "entry", from+".bad", "reason", why)
}

// takeDropped returns and resets the count of entries lost since the last
// call.
func (s *spool) takeDropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.dropped
	s.dropped = 0
	return n
}

// head returns the oldest entry and marks it in flight until pop or keep.
// A corrupt entry is set aside (renamed to .bad, never retried) and
// reported as an error with errCorrupt.
func (s *spool) head() (*event.Event, error) {
	_, ev, err := s.headNamed()
	return ev, err
}

// headNamed is head that also returns the entry's name (empty when the
// spool is empty).
func (s *spool) headNamed() (string, *event.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.names) == 0 {
		return "", nil, nil
	}
	name := s.names[0]
	ev, err := s.read(name)
	if err != nil {
		s.forget(name)
		s.setAside(name, err.Error())
		return name, nil, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	s.inflight = name
	return name, ev, nil
}

// has tells whether name is still a live entry.
func (s *spool) has(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.sizes[name]
	return ok
}

var errCorrupt = errors.New("corrupt spool entry set aside")

// pop removes the entry head returned, after it was delivered or given up on.
func (s *spool) pop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight != "" {
		s.drop(s.inflight)
		s.inflight = ""
	}
}

// keep leaves the entry head returned in place for a later attempt.
func (s *spool) keep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight = ""
}

// reportOrphanSpools warns about spool directories below dir that no
// configured sink owns: a sink renamed or removed leaves its undelivered
// notifications there, and nothing would ever send or mention them. It
// returns the entries per orphaned directory.
func reportOrphanSpools(dir string, sinks []*sinkState, log *slog.Logger) map[string]int {
	owned := map[string]bool{}
	for _, s := range sinks {
		for i := range s.ws {
			owned[replicaSpoolDir(s.id, i)] = true
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out map[string]int
	for _, e := range ents {
		if !e.IsDir() || owned[e.Name()] {
			continue
		}
		sub := filepath.Join(dir, e.Name())
		files, err := os.ReadDir(sub)
		if err != nil {
			log.Warn("spool of no configured sink unreadable", "dir", sub, "err", err)
			continue
		}
		n := 0
		for _, f := range files {
			if strings.HasSuffix(f.Name(), ".json") && !strings.HasPrefix(f.Name(), ".") {
				n++
			}
		}
		if n == 0 {
			continue
		}
		if out == nil {
			out = map[string]int{}
		}
		out[e.Name()] = n
		kind, name, _ := strings.Cut(e.Name(), "-")
		log.Warn("spooled notifications of a sink that is no longer configured are not delivered: configure a sink of that kind and name again to deliver them, or remove the directory",
			"dir", sub, "entries", n, "kind", kind, "name", name)
	}
	return out
}
