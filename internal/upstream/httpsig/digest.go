package httpsig

// Body digests. The signature covers a digest header rather than the body
// itself, so the digest must be recomputed from the exact bytes received and
// compared; otherwise a valid signature would vouch for any body.

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ContentDigest returns the version-15 content-digest value for body
// (RFC 9530): "sha-512=:<base64 of SHA-512(body)>:".
func ContentDigest(body []byte) string {
	sum := sha512.Sum512(body)
	return "sha-512=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"
}

// LegacyDigest returns the version-6 digest value for body (RFC 3230):
// "SHA-256=<base64 of SHA-256(body)>".
func LegacyDigest(body []byte) string {
	sum := sha256.Sum256(body)
	return "SHA-256=" + base64.StdEncoding.EncodeToString(sum[:])
}

// checkContentDigest verifies a content-digest field value against body. The
// sha-512 member is mandatory (it is what Upvest sends); a sha-256 member, if
// also present, must match too, since the signer vouched for it. Other
// algorithms are ignored.
func checkContentDigest(header string, body []byte) error {
	members, err := parseDictionary(header)
	if err != nil {
		return fmt.Errorf("content-digest: %w", err)
	}
	found := false
	for _, m := range members {
		var want []byte
		switch m.key {
		case "sha-512":
			sum := sha512.Sum512(body)
			want = sum[:]
			found = true
		case "sha-256":
			sum := sha256.Sum256(body)
			want = sum[:]
		default:
			continue
		}
		if m.innerList || m.item.value.kind != sfBytes {
			return fmt.Errorf("content-digest: %s is not a byte sequence", m.key)
		}
		if subtle.ConstantTimeCompare(m.item.value.bytes, want) != 1 {
			return fmt.Errorf("content-digest: %s does not match the body", m.key)
		}
	}
	if !found {
		return errors.New("content-digest: no sha-512 member")
	}
	return nil
}

// checkLegacyDigest verifies an RFC 3230 digest field value against body.
// SHA-256 is mandatory; SHA-512, if present, must match too. Algorithm names
// are case-insensitive per RFC 3230.
func checkLegacyDigest(header string, body []byte) error {
	found := false
	for _, part := range strings.Split(header, ",") {
		alg, value, ok := strings.Cut(trimOWS(part), "=")
		if !ok {
			return errors.New("digest: member without '='")
		}
		var want []byte
		switch strings.ToLower(alg) {
		case "sha-256":
			sum := sha256.Sum256(body)
			want = sum[:]
			found = true
		case "sha-512":
			sum := sha512.Sum512(body)
			want = sum[:]
		default:
			continue
		}
		got, err := base64.StdEncoding.DecodeString(value)
		if err != nil {
			return fmt.Errorf("digest: %s is not base64", alg)
		}
		if subtle.ConstantTimeCompare(got, want) != 1 {
			return fmt.Errorf("digest: %s does not match the body", alg)
		}
	}
	if !found {
		return errors.New("digest: no SHA-256 member")
	}
	return nil
}
