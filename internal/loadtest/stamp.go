package loadtest

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// eventStamp is what a subscriber reads of a Watch message: whether it
// carries an event, and when that event was created. Decoding only these
// (not the whole message) keeps the subscribers, which share the machine
// with the gateway, to a small part of its CPU: a whole decode per message
// was a fifth of this process's CPU with 1,000 unfiltered subscribers.
type eventStamp struct {
	event   bool
	created time.Time
}

// Field numbers of the Watch responses (every Watch*EventsResponse has its
// event in field 2, and every event its created_at in field 2) and of
// google.protobuf.Timestamp.
const (
	responseEventField = 2
	eventCreatedField  = 2
	timestampSeconds   = 1
	timestampNanos     = 2
)

var errStamp = errors.New("loadtest: malformed Watch message")

// unmarshal reads m, a Watch response in the protobuf wire format.
func (s *eventStamp) unmarshal(m []byte) error {
	*s = eventStamp{}
	event, ok, err := bytesField(m, responseEventField)
	if err != nil || !ok {
		return err
	}
	s.event = true
	ts, _, err := bytesField(event, eventCreatedField)
	if err != nil {
		return err
	}
	var sec, nsec uint64 // absent: the epoch, as protobuf's zero Timestamp
	for len(ts) > 0 {
		num, typ, n := protowire.ConsumeTag(ts)
		if n < 0 {
			return errStamp
		}
		ts = ts[n:]
		if typ == protowire.VarintType && (num == timestampSeconds || num == timestampNanos) {
			v, n := protowire.ConsumeVarint(ts)
			if n < 0 {
				return errStamp
			}
			if num == timestampSeconds {
				sec = v
			} else {
				nsec = v
			}
			ts = ts[n:]
			continue
		}
		if n = protowire.ConsumeFieldValue(num, typ, ts); n < 0 {
			return errStamp
		}
		ts = ts[n:]
	}
	s.created = time.Unix(int64(sec), int64(int32(nsec)))
	return nil
}

// bytesField returns the last occurrence of field num, of the bytes wire
// type, in m (the last, as a protobuf decoder keeps it).
func bytesField(m []byte, num protowire.Number) (v []byte, ok bool, err error) {
	for len(m) > 0 {
		n, typ, l := protowire.ConsumeTag(m)
		if l < 0 {
			return nil, false, errStamp
		}
		m = m[l:]
		if n == num && typ == protowire.BytesType {
			b, l := protowire.ConsumeBytes(m)
			if l < 0 {
				return nil, false, errStamp
			}
			v, ok = b, true
			m = m[l:]
			continue
		}
		if l = protowire.ConsumeFieldValue(n, typ, m); l < 0 {
			return nil, false, errStamp
		}
		m = m[l:]
	}
	return v, ok, nil
}

// stampCodec marshals requests as protobuf and reads responses into an
// eventStamp.
type stampCodec struct{}

var protoCodec = encoding.GetCodecV2(proto.Name)

func (stampCodec) Name() string { return proto.Name }

func (stampCodec) Marshal(v any) (mem.BufferSlice, error) { return protoCodec.Marshal(v) }

func (stampCodec) Unmarshal(data mem.BufferSlice, v any) error {
	s, ok := v.(*eventStamp)
	if !ok {
		return fmt.Errorf("loadtest: stampCodec cannot decode into %T", v)
	}
	if len(data) == 1 {
		return s.unmarshal(data[0].ReadOnlyData())
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return s.unmarshal(buf.ReadOnlyData())
}
