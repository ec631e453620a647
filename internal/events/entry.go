package events

import (
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// entry is one message of the log as the tail or a catch-up read it. The
// tail decodes a message once, for however many subscribers it goes to,
// and they share the entry read-only.
type entry struct {
	seq uint64
	at  time.Time // JetStream's timestamp
	// The subject's tokens after the prefix, lower case: what filters
	// match on, so an event is decoded only when someone wants it.
	family, status, accountGroup string
	event                        Event // decoded on demand: see decode
	decoded                      bool
}

// newEntry reads the position and subject of msg; ok is false for a
// message whose subject is not <prefix>.<family>.<status>.<account group>
// (nothing Append wrote, so nothing a filter selects), which still counts as
// a position passed.
func newEntry(prefix string, msg jetstream.Msg, md *jetstream.MsgMetadata) (e *entry, ok bool) {
	e = &entry{seq: md.Sequence.Stream, at: md.Timestamp}
	rest, found := strings.CutPrefix(msg.Subject(), prefix+".")
	if !found {
		return e, false
	}
	var more bool
	if e.family, rest, more = strings.Cut(rest, "."); !more {
		return e, false
	}
	if e.status, e.accountGroup, more = strings.Cut(rest, "."); !more || strings.Contains(e.accountGroup, ".") {
		return e, false
	}
	return e, true
}

// decode parses the message's data, once. An undecodable message was not
// written by Append: nothing a subscriber could use, so it is skipped (the
// position still passes it).
func (e *entry) decode(data []byte) error {
	if e.decoded {
		return nil
	}
	ev, err := parseEvent(data)
	if err != nil {
		return err
	}
	e.event, e.decoded = ev, true
	return nil
}
