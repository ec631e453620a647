package events

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"hash/fnv"
)

// A resume token is base64url (no padding) of
//
//	version (1) | stream name hash (4) | stream created, unix ns (8) | sequence (8) | CRC-32C (4)
//
// sequence is the stream sequence of the last position the subscription
// passed: resuming starts at sequence+1. The name hash and creation time tie
// the token to one stream instance, so that a token from another log is
// refused and one from a log that was deleted and re-created is recognised
// as pointing at events that no longer exist. The checksum turns random or
// truncated input into ErrBadToken rather than a plausible position. Tokens
// are not secret: a forged one only moves the caller's own position within
// what its filter lets it see.
const (
	tokenVersion = 1
	tokenLen     = 1 + 4 + 8 + 8 + 4
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// position is a decoded resume token.
type position struct {
	streamHash uint32
	created    int64 // stream creation, unix nanoseconds
	seq        uint64
}

// streamIdentity identifies one instance of a stream.
type streamIdentity struct {
	hash    uint32
	created int64
}

func newStreamIdentity(name string, createdUnixNano int64) streamIdentity {
	h := fnv.New32a()
	h.Write([]byte(name))
	return streamIdentity{hash: h.Sum32(), created: createdUnixNano}
}

func (id streamIdentity) token(seq uint64) string {
	var b [tokenLen]byte
	b[0] = tokenVersion
	binary.BigEndian.PutUint32(b[1:5], id.hash)
	binary.BigEndian.PutUint64(b[5:13], uint64(id.created))
	binary.BigEndian.PutUint64(b[13:21], seq)
	binary.BigEndian.PutUint32(b[21:25], crc32.Checksum(b[:21], crcTable))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

var errTokenFormat = errors.New("malformed token")

// decodeToken parses a token; it never panics, whatever the input.
func decodeToken(s string) (position, error) {
	if len(s) != base64.RawURLEncoding.EncodedLen(tokenLen) {
		return position{}, errTokenFormat
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != tokenLen || b[0] != tokenVersion {
		return position{}, errTokenFormat
	}
	if crc32.Checksum(b[:21], crcTable) != binary.BigEndian.Uint32(b[21:25]) {
		return position{}, errTokenFormat
	}
	return position{
		streamHash: binary.BigEndian.Uint32(b[1:5]),
		created:    int64(binary.BigEndian.Uint64(b[5:13])),
		seq:        binary.BigEndian.Uint64(b[13:21]),
	}, nil
}
