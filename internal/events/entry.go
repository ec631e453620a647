package events

import (
	"strings"
	"sync"
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

	memoMu sync.Mutex
	memo   map[any]*memoValue
	tokens []filterToken // the resume tokens made for it, by filter
}

// filterToken is an entry's resume token for the subscribers of one filter.
type filterToken struct {
	filter uint32
	token  string
}

// token is the resume token of the entry for the subscribers of filter:
// made once for all of them (a thousand subscribers of one filter share it).
func (e *entry) token(id streamIdentity, filter uint32) string {
	e.memoMu.Lock()
	defer e.memoMu.Unlock()
	for _, t := range e.tokens {
		if t.filter == filter {
			return t.token
		}
	}
	tok := id.token(filter, e.seq)
	e.tokens = append(e.tokens, filterToken{filter, tok})
	return tok
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

// memoValue is one memoised result: built once, by the first caller.
type memoValue struct {
	once sync.Once
	v    any
	err  error
}

// memoise returns build's result for key, building it once for however
// many subscribers ask (see Message.Memo).
func (e *entry) memoise(key any, build func() (any, error)) (any, error) {
	e.memoMu.Lock()
	if e.memo == nil {
		e.memo = map[any]*memoValue{}
	}
	m := e.memo[key]
	if m == nil {
		m = &memoValue{}
		e.memo[key] = m
	}
	e.memoMu.Unlock()
	m.once.Do(func() { m.v, m.err = build() })
	return m.v, m.err
}
