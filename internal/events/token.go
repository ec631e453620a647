package events

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"hash/fnv"
	"slices"
	"strings"
)

// A resume token is base64url (no padding) of
//
//	version (1) | stream name hash (4) | stream created, unix ns (8) | filter hash (4) | sequence (8) | CRC-32C (4)
//
// sequence is the stream sequence of the last position the subscription
// passed: resuming starts at sequence+1. The name hash and creation time tie
// the token to one stream instance, so that a token from another log is
// refused and one from a log that was deleted and re-created is recognised
// as pointing at events that no longer exist. The filter hash ties it to the
// filter it was issued for: a heartbeat's position is only safe for the
// events of that filter (it may have moved past events of others), so a
// token used with another filter is refused. The checksum turns random or
// truncated input into ErrBadToken rather than a plausible position. Tokens
// are not secret: a forged one only moves the caller's own position within
// what its filter lets it see.
const (
	tokenVersion = 2
	tokenLen     = 1 + 4 + 8 + 4 + 8 + 4
	crcAt        = tokenLen - 4
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// position is a decoded resume token.
type position struct {
	streamHash uint32
	created    int64  // stream creation, unix nanoseconds
	filter     uint32 // filterHash of the subscription's subjects
	seq        uint64
}

// filterHash identifies a filter by its exact subjects (before any widening
// for old servers), in any order: the first 4 bytes of their SHA-256.
func filterHash(subjects []string) uint32 {
	s := slices.Clone(subjects)
	slices.Sort(s)
	s = slices.Compact(s)
	sum := sha256.Sum256([]byte(strings.Join(s, "\x00")))
	return binary.BigEndian.Uint32(sum[:4])
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

// token is the resume token for position seq of a subscription whose
// subjects have the filterHash filter. It is made for every message sent,
// so it allocates only the string.
func (id streamIdentity) token(filter uint32, seq uint64) string {
	var b [tokenLen]byte
	b[0] = tokenVersion
	binary.BigEndian.PutUint32(b[1:5], id.hash)
	binary.BigEndian.PutUint64(b[5:13], uint64(id.created))
	binary.BigEndian.PutUint32(b[13:17], filter)
	binary.BigEndian.PutUint64(b[17:25], seq)
	binary.BigEndian.PutUint32(b[crcAt:], crc32.Checksum(b[:crcAt], crcTable))
	var out [tokenChars]byte
	base64.RawURLEncoding.Encode(out[:], b[:])
	return string(out[:])
}

// tokenChars is the length of a token.
const tokenChars = (tokenLen*8 + 5) / 6

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
	if crc32.Checksum(b[:crcAt], crcTable) != binary.BigEndian.Uint32(b[crcAt:]) {
		return position{}, errTokenFormat
	}
	return position{
		streamHash: binary.BigEndian.Uint32(b[1:5]),
		created:    int64(binary.BigEndian.Uint64(b[5:13])),
		filter:     binary.BigEndian.Uint32(b[13:17]),
		seq:        binary.BigEndian.Uint64(b[17:25]),
	}, nil
}
