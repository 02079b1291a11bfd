package notify

import (
	"encoding/json"
	"errors"
	"fmt"
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
}

func openSpool(dir string, maxBytes int64, maxEntries, maxPIDs int) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create spool: %w", err)
	}
	s := &spool{dir: dir, maxBytes: maxBytes, maxEntries: max(maxEntries, 1), maxPIDs: maxPIDs}
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
		if !strings.HasSuffix(name, ".json") || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		s.names = append(s.names, name)
		s.sizes[name] = info.Size()
		s.bytes += info.Size()
		// A sequence number, not a time, orders entries: the wall clock
		// may step back between runs.
		if n, err := strconv.ParseUint(strings.TrimSuffix(name, ".json"), 10, 64); err == nil && n > s.seq {
			s.seq = n
		}
	}
	slices.Sort(s.names)
	return nil
}

func (s *spool) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.names)
}

// put appends ev. It returns how many older entries were merged away to
// make room (their counts live on in the entry they were merged into).
func (s *spool) put(ev *event.Event) (merged int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := json.Marshal(ev)
	if err != nil {
		return 0, fmt.Errorf("encode spool entry: %w", err)
	}
	for len(s.names) > s.first() && (len(s.names)+1 > s.maxEntries || s.bytes+int64(len(b)) > s.maxBytes) {
		if err := s.evictOldest(ev); err != nil {
			return merged, err
		}
		merged++
		if b, err = json.Marshal(ev); err != nil {
			return merged, fmt.Errorf("encode spool entry: %w", err)
		}
	}
	s.seq++
	name := fmt.Sprintf("%020d.json", s.seq)
	if err := s.write(name, b); err != nil {
		return merged, err
	}
	s.names = append(s.names, name)
	return merged, nil
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
// the new entry ev when it is the last one.
func (s *spool) evictOldest(ev *event.Event) error {
	i := s.first()
	oldest, err := s.read(s.names[i])
	if err != nil {
		// Unreadable: nothing to carry over; drop it so the spool can move.
		s.drop(s.names[i])
		return nil
	}
	if len(s.names) == i+1 {
		merge(ev, oldest, s.maxPIDs)
		s.drop(s.names[i])
		return nil
	}
	next, err := s.read(s.names[i+1])
	if err != nil {
		// Unreadable: drop it and merge into the one after on the next pass.
		s.drop(s.names[i+1])
		return nil
	}
	// The merged entry keeps the place of the older one so nothing overtakes it.
	merge(oldest, next, s.maxPIDs)
	b, err := json.Marshal(oldest)
	if err != nil {
		return fmt.Errorf("encode spool entry: %w", err)
	}
	keep := s.names[i+1]
	s.drop(s.names[i])
	s.bytes -= s.sizes[keep]
	return s.write(keep, b)
}

func (s *spool) write(name string, b []byte) error {
	tmp := filepath.Join(s.dir, "."+name)
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write spool entry: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write spool entry: %w", err)
	}
	s.sizes[name] = int64(len(b))
	s.bytes += int64(len(b))
	return nil
}

func (s *spool) read(name string) (*event.Event, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, name))
	if err != nil {
		return nil, fmt.Errorf("read spool entry: %w", err)
	}
	var ev event.Event
	if err := json.Unmarshal(b, &ev); err != nil {
		return nil, fmt.Errorf("decode spool entry %s: %w", name, err)
	}
	return &ev, nil
}

// drop removes the entry name.
func (s *spool) drop(name string) {
	os.Remove(filepath.Join(s.dir, name))
	s.bytes -= s.sizes[name]
	delete(s.sizes, name)
	if i := slices.Index(s.names, name); i >= 0 {
		s.names = slices.Delete(s.names, i, i+1)
	}
}

// head returns the oldest entry and marks it in flight until pop or keep.
// A corrupt entry is set aside (renamed to .bad, never retried) and
// reported as an error with errCorrupt.
func (s *spool) head() (*event.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.names) == 0 {
		return nil, nil
	}
	name := s.names[0]
	ev, err := s.read(name)
	if err != nil {
		os.Rename(filepath.Join(s.dir, name), filepath.Join(s.dir, name+".bad"))
		s.bytes -= s.sizes[name]
		delete(s.sizes, name)
		s.names = s.names[1:]
		return nil, errors.Join(errCorrupt, err)
	}
	s.inflight = name
	return ev, nil
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
