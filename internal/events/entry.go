package events

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// entry is one message of the log as the tail or a catch-up read it. The
// tail decodes a message at most once, for however many subscribers it
// goes to, and they share the entry read-only.
type entry struct {
	seq uint64
	at  time.Time // JetStream's timestamp
	// The subject's tokens after the prefix, lower case: what filters
	// match on, so an event is decoded only when someone wants it. isEvent
	// is false for a subject Append never writes (nothing a filter
	// selects; the position still passes it).
	family, status, accountGroup string
	isEvent                      bool
	data                         []byte

	decodeOnce sync.Once
	event      Event
	decodeErr  error

	// What subscribers share beyond the event: values they memoise
	// (Message.Memo) and resume tokens. Read without locking (many
	// subscribers read the same entry at once), copied on write under
	// sharedMu.
	sharedMu sync.Mutex
	memo     atomic.Pointer[[]memoSlot]
	tokens   atomic.Pointer[[]filterToken]
}

// filterToken is an entry's resume token for the subscribers of one filter.
type filterToken struct {
	filter uint32
	token  string
}

// token is the resume token of the entry for the subscribers of filter:
// made once for all of them (a thousand subscribers of one filter share it).
func (e *entry) token(id streamIdentity, filter uint32) string {
	find := func() (string, bool) {
		if ts := e.tokens.Load(); ts != nil {
			for _, t := range *ts {
				if t.filter == filter {
					return t.token, true
				}
			}
		}
		return "", false
	}
	if tok, ok := find(); ok {
		return tok
	}
	e.sharedMu.Lock()
	defer e.sharedMu.Unlock()
	if tok, ok := find(); ok {
		return tok
	}
	tok := id.token(filter, e.seq)
	e.tokens.Store(appendCopy(e.tokens.Load(), filterToken{filter, tok}))
	return tok
}

// appendCopy is *s with v appended, in a new slice: readers may hold *s.
func appendCopy[T any](s *[]T, v T) *[]T {
	var out []T
	if s != nil {
		out = make([]T, len(*s), len(*s)+1)
		copy(out, *s)
	}
	out = append(out, v)
	return &out
}

// newEntry reads the position and subject of msg.
func newEntry(prefix string, msg jetstream.Msg, md *jetstream.MsgMetadata) *entry {
	e := &entry{seq: md.Sequence.Stream, at: md.Timestamp, data: msg.Data()}
	rest, found := strings.CutPrefix(msg.Subject(), prefix+".")
	if !found {
		return e
	}
	var more bool
	if e.family, rest, more = strings.Cut(rest, "."); !more {
		return e
	}
	if e.status, e.accountGroup, more = strings.Cut(rest, "."); !more || strings.Contains(e.accountGroup, ".") {
		return e
	}
	e.isEvent = true
	return e
}

// decoded parses the message's data, once. An undecodable message was not
// written by Append: nothing a subscriber could use, so it is skipped (the
// position still passes it).
func (e *entry) decoded() (*Event, error) {
	e.decodeOnce.Do(func() {
		e.event, e.decodeErr = parseEvent(e.data)
	})
	return &e.event, e.decodeErr
}

// memoKey is what a memoised result is shared by: a key of the caller's
// and the subscribers' filter. Not an interface: a thousand subscribers
// looking it up per event would allocate one each.
type memoKey struct {
	key    string
	filter uint32
}

// memoSlot is one memoised result: built once, by the first caller.
type memoSlot struct {
	key  memoKey
	once *sync.Once
	v    *memoValue
}

type memoValue struct {
	v   any
	err error
}

// memoise returns build's result for key, building it once for however
// many subscribers ask (see Message.Memo).
func (e *entry) memoise(key memoKey, build func() (any, error)) (any, error) {
	find := func() (memoSlot, bool) {
		if slots := e.memo.Load(); slots != nil {
			for _, m := range *slots {
				if m.key == key {
					return m, true
				}
			}
		}
		return memoSlot{}, false
	}
	m, ok := find()
	if !ok {
		e.sharedMu.Lock()
		if m, ok = find(); !ok {
			m = memoSlot{key: key, once: &sync.Once{}, v: &memoValue{}}
			e.memo.Store(appendCopy(e.memo.Load(), m))
		}
		e.sharedMu.Unlock()
	}
	m.once.Do(func() { m.v.v, m.v.err = build() })
	return m.v.v, m.v.err
}
