package idempotency

import (
	"encoding/base64"
	"fmt"
)

// MaxKeyLen is the longest key Do accepts, in bytes: room for any spelling
// of a UUID and then some, while keeping subjects short.
const MaxKeyLen = 128

// escapedPrefix starts the key-value key of a key that cannot be stored as
// it is. A key stored as it is never holds a '.', so the two forms cannot
// meet.
const escapedPrefix = "x."

// kvKey maps a caller's key onto a key-value key (which allows only
// [-/_=.a-zA-Z0-9], and where '.' separates subject tokens). A key of
// letters, digits, '-' and '_' only, such as a UUID in its usual spelling,
// is stored as it is, so an operator finds it in the bucket; any other key
// is stored as escapedPrefix + its unpadded URL-safe base64. The mapping is
// one-to-one and keeps case: "ABC" and "abc" are two keys.
func kvKey(key string) (string, error) {
	if key == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if len(key) > MaxKeyLen {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrInvalidKey, MaxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if !plainKeyByte(key[i]) {
			return escapedPrefix + base64.RawURLEncoding.EncodeToString([]byte(key)), nil
		}
	}
	return key, nil
}

func plainKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}
