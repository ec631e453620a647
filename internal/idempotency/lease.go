package idempotency

import (
	"context"
	"time"
)

// lease is an owner's hold on an in-flight entry: a goroutine rewrites the
// entry every RenewEvery, and each write's new revision tells waiters the
// owner is alive.
type lease struct {
	stop chan struct{}
	done chan struct{}
	// Written by the renewing goroutine only, read after done is closed.
	rev  uint64 // the entry's revision as last written by this owner
	lost bool   // another owner took the entry over
}

// hold starts renewing the entry at rev until end is called.
func (s *Store) hold(k string, fp []byte, rev uint64) *lease {
	l := &lease{stop: make(chan struct{}), done: make(chan struct{}), rev: rev}
	go s.renew(k, s.inFlight(fp), l)
	return l
}

func (s *Store) renew(k string, inFlight []byte, l *lease) {
	defer close(l.done)
	t := time.NewTicker(s.cfg.RenewEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		select {
		case <-l.stop: // both were ready: run is over, no need to renew
			return
		default:
		}
		rev, err := s.update(context.Background(), k, inFlight, l.rev)
		switch {
		case err == nil:
			l.rev = rev
		case isConflict(err):
			// A waiter saw no renewal for a whole lease. run goes on: its
			// outcome, if final, may still be the first recorded.
			l.lost = true
			s.logger.Warn("idempotency: lease lost: another owner took the request over", "key", k)
			return
		default:
			// Keep trying: the lease may yet hold, or expire and be taken.
			s.logger.Warn("idempotency: renewing lease", "key", k, "err", err)
		}
	}
}

// end stops the renewals and returns the entry's last revision written by
// this owner and whether another owner took it over. Call it once.
func (l *lease) end() (rev uint64, lost bool) {
	close(l.stop)
	<-l.done
	return l.rev, l.lost
}
