package upvestsim

import "time"

// stepper is a resource with a status lifecycle.
type stepper interface {
	// step moves the resource one status forward (or leaves it, e.g. a
	// queued decrease still not covered), emitting its events and money
	// movements, and reports whether it reached a final status. s.mu is held.
	step(s *Sim) (final bool)
}

// Advance moves every resource not in a final status one status forward,
// in creation order: a confirmation earlier in the pass can cover a queued
// decrease later in it. Tests call it to make transitions deterministic.
func (s *Sim) Advance() {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.active[:0]
	for _, r := range s.active {
		if !r.step(s) {
			kept = append(kept, r)
		}
	}
	clear(s.active[len(kept):])
	s.active = kept
}

// stepLoop advances every period until Close.
func (s *Sim) stepLoop(period time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.Advance()
		case <-s.done:
			return
		}
	}
}
