// SPDX-License-Identifier: Apache-2.0

package poll

import (
	"bytes"
	"sync"
)

// Buffer collects what a goroutine or a child process writes (a logger,
// a process's stderr) while the test polls it with String.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
