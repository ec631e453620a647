package httpsig

// JSON Web Keys (RFC 7517/7518, Ed25519 per RFC 8037). Upvest publishes the
// keys that sign its webhooks as a JWKS of EC P-521 keys at
// GET /auth/verify_keys; deliveries name the key by keyid = kid.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// JWKS is a JSON Web Key Set.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// JWK is a public JSON Web Key: kty "EC" with crv P-256, P-384 or P-521 and
// coordinates x, y; or kty "OKP" with crv "Ed25519" and x. Coordinates are
// unpadded base64url of fixed length, as RFC 7518 requires.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	Kid string `json:"kid,omitempty"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
}

// NewJWK describes pub (ECDSA P-256/P-384/P-521 or Ed25519) as a JWK with
// the given kid and use "sig". alg is left empty: Upvest hashes with SHA-512
// on every curve, which has no JOSE name except on P-521.
func NewJWK(kid string, pub crypto.PublicKey) (JWK, error) {
	if err := checkPublicKey(pub); err != nil {
		return JWK{}, fmt.Errorf("httpsig: jwk from %T: %w", pub, err)
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		raw, err := k.Bytes() // 0x04 || X || Y, each fixed-length
		if err != nil {
			return JWK{}, fmt.Errorf("httpsig: jwk: %w", ErrUnsupportedKey)
		}
		n := (len(raw) - 1) / 2
		return JWK{
			Kty: "EC",
			Crv: curveName(k.Curve),
			X:   base64.RawURLEncoding.EncodeToString(raw[1 : 1+n]),
			Y:   base64.RawURLEncoding.EncodeToString(raw[1+n:]),
			Kid: kid,
			Use: "sig",
		}, nil
	case ed25519.PublicKey:
		return JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(k), Kid: kid, Use: "sig"}, nil
	}
	return JWK{}, ErrUnsupportedKey // unreachable: checkPublicKey accepted it
}

// PublicKey decodes the key, checking coordinate lengths and that an EC point
// lies on its curve (an off-curve point is the classic invalid-curve attack).
// Unknown kty or crv values yield an error wrapping ErrUnsupportedKey. alg is
// informational only: the algorithm always follows the key type.
func (k JWK) PublicKey() (crypto.PublicKey, error) {
	if k.Use != "" && k.Use != "sig" {
		return nil, fmt.Errorf("httpsig: jwk use %s is not a signature key: %w", quoteShort(k.Use), ErrUnsupportedKey)
	}
	switch k.Kty {
	case "EC":
		var curve elliptic.Curve
		switch k.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, fmt.Errorf("httpsig: jwk EC curve %s: %w", quoteShort(k.Crv), ErrUnsupportedKey)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, errX := base64.RawURLEncoding.DecodeString(k.X)
		y, errY := base64.RawURLEncoding.DecodeString(k.Y)
		if errX != nil || errY != nil {
			return nil, errors.New("httpsig: jwk EC coordinates are not unpadded base64url")
		}
		if len(x) != size || len(y) != size {
			return nil, fmt.Errorf("httpsig: jwk %s coordinates must be %d bytes", k.Crv, size)
		}
		raw := make([]byte, 0, 1+2*size)
		raw = append(raw, 4)
		raw = append(raw, x...)
		raw = append(raw, y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, raw)
		if err != nil {
			return nil, fmt.Errorf("httpsig: jwk %s point is not on the curve", k.Crv)
		}
		return pub, nil
	case "OKP":
		if k.Crv != "Ed25519" {
			return nil, fmt.Errorf("httpsig: jwk OKP curve %s: %w", quoteShort(k.Crv), ErrUnsupportedKey)
		}
		if k.Y != "" {
			return nil, errors.New("httpsig: jwk Ed25519 key must not have y")
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil {
			return nil, errors.New("httpsig: jwk Ed25519 x is not unpadded base64url")
		}
		if len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("httpsig: jwk Ed25519 x must be %d bytes", ed25519.PublicKeySize)
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, fmt.Errorf("httpsig: jwk kty %s: %w", quoteShort(k.Kty), ErrUnsupportedKey)
}

// ParseJWKS decodes a JWKS into public keys by kid. Keys this package cannot
// use (another kty or curve, or use other than "sig") are skipped, so that
// Upvest adding, say, an RSA key does not break webhook verification. A
// usable key that is malformed, has no kid, or shares its kid with another
// usable key fails the whole set: a corrupt key set must be noticed, and a
// kid must name exactly one key.
func ParseJWKS(data []byte) (map[string]crypto.PublicKey, error) {
	var set struct {
		Keys *[]JWK `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("httpsig: jwks: %w", err)
	}
	if set.Keys == nil {
		return nil, errors.New("httpsig: jwks has no keys member")
	}
	out := make(map[string]crypto.PublicKey, len(*set.Keys))
	for i, k := range *set.Keys {
		pub, err := k.PublicKey()
		if errors.Is(err, ErrUnsupportedKey) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("httpsig: jwks key %d (kid %s): %w", i, quoteShort(k.Kid), err)
		}
		if k.Kid == "" {
			return nil, fmt.Errorf("httpsig: jwks key %d has no kid", i)
		}
		if _, dup := out[k.Kid]; dup {
			return nil, fmt.Errorf("httpsig: jwks kid %s appears more than once", quoteShort(k.Kid))
		}
		out[k.Kid] = pub
	}
	return out, nil
}
