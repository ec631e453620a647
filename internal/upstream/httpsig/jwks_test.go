package httpsig

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// upvestExampleJWKS is the example response of GET /auth/verify_keys in
// Upvest's OpenAPI description (public key only).
const upvestExampleJWKS = `{"keys":[{"kid":"9ed77463-c18e-4794-ab5c-17423f9b801a","kty":"EC","crv":"P-521",` +
	`"x":"AcYAf5Ou0UvtehpeRvyhnvvrUQvjI4B3VCxfSmxK4gqKJGxO_jTB-nTdrHbBfmZpwmwYR86DppMg43E579K5MQ54",` +
	`"y":"ALkrId77iD0Ye2vBS5bTkLqPH-bo8urTpTXiNc6Ub-VOFbXfJrR0tQ8COvVXXu58BTu8jWV-1mtbjfJpDl3ISbcK"}]}`

func TestJWKSRoundTrip(t *testing.T) {
	for _, kc := range testKeys(t) {
		t.Run(kc.name, func(t *testing.T) {
			jwk, err := NewJWK("kid-"+kc.name, kc.key.Public())
			if err != nil {
				t.Fatal(err)
			}
			data, err := json.Marshal(JWKS{Keys: []JWK{jwk}})
			if err != nil {
				t.Fatal(err)
			}
			keys, err := ParseJWKS(data)
			if err != nil {
				t.Fatalf("ParseJWKS(%s): %v", data, err)
			}
			pub, ok := keys["kid-"+kc.name]
			if !ok || len(keys) != 1 {
				t.Fatalf("keys = %v", keys)
			}
			if !pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(kc.key.Public()) {
				t.Fatal("round trip changed the key")
			}

			// The resolved key verifies what the private key signs.
			req, body := webhookDelivery(t)
			if err := mustSigner(t, kc.key, WithVersion(6)).Sign(req, body); err != nil {
				t.Fatal(err)
			}
			res := StaticKeys(map[string]crypto.PublicKey{"key-1": pub})
			if _, err := Verify(context.Background(), req, body, res, VerifyOptions{Now: fixedClock}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestNewJWKShape(t *testing.T) {
	tests := []struct {
		key     string
		kty     string
		crv     string
		coordSz int
		hasY    bool
	}{
		{"P-256", "EC", "P-256", 32, true},
		{"P-384", "EC", "P-384", 48, true},
		{"P-521", "EC", "P-521", 66, true},
		{"Ed25519", "OKP", "Ed25519", 32, false},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			jwk, err := NewJWK("k", testKey(t, tt.key).Public())
			if err != nil {
				t.Fatal(err)
			}
			if jwk.Kty != tt.kty || jwk.Crv != tt.crv || jwk.Kid != "k" || jwk.Use != "sig" || jwk.Alg != "" {
				t.Errorf("jwk = %+v", jwk)
			}
			x, err := base64.RawURLEncoding.DecodeString(jwk.X)
			if err != nil || len(x) != tt.coordSz {
				t.Errorf("x is %d bytes (%v), want %d unpadded base64url", len(x), err, tt.coordSz)
			}
			if (jwk.Y != "") != tt.hasY {
				t.Errorf("y = %q", jwk.Y)
			}
			data, _ := json.Marshal(jwk)
			var m map[string]any
			_ = json.Unmarshal(data, &m)
			for _, field := range []string{"kty", "crv", "x", "kid", "use"} {
				if _, ok := m[field]; !ok {
					t.Errorf("JSON %s lacks %q", data, field)
				}
			}
			if _, ok := m["alg"]; ok {
				t.Errorf("JSON %s has an empty alg", data)
			}
		})
	}
	if _, err := NewJWK("k", struct{}{}); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("NewJWK(struct{}) = %v", err)
	}
}

func TestParseJWKSUpvestExample(t *testing.T) {
	keys, err := ParseJWKS([]byte(upvestExampleJWKS))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := keys["9ed77463-c18e-4794-ab5c-17423f9b801a"]; !ok || len(keys) != 1 {
		t.Fatalf("keys = %v", keys)
	}
}

func TestParseJWKSRejectsAndSkips(t *testing.T) {
	good, err := NewJWK("good", testKey(t, "P-521").Public())
	if err != nil {
		t.Fatal(err)
	}
	ed, err := NewJWK("ed", testKey(t, "Ed25519").Public())
	if err != nil {
		t.Fatal(err)
	}
	mod := func(k JWK, f func(*JWK)) JWK { f(&k); return k }
	flipLast := func(s string) string {
		b, _ := base64.RawURLEncoding.DecodeString(s)
		b[len(b)-1] ^= 1
		return base64.RawURLEncoding.EncodeToString(b)
	}
	set := func(keys ...JWK) string {
		data, _ := json.Marshal(JWKS{Keys: keys})
		return string(data)
	}
	tests := []struct {
		name string
		data string
		want []string // kids; nil means an error is expected
	}{
		{"two good keys", set(good, ed), []string{"good", "ed"}},
		{"point not on curve", set(mod(good, func(k *JWK) { k.Y = flipLast(k.Y) })), nil},
		{"x and y swapped", set(mod(good, func(k *JWK) { k.X, k.Y = k.Y, k.X })), nil},
		{"short coordinate", set(mod(good, func(k *JWK) { k.X = k.X[4:] })), nil},
		{"padded base64", set(mod(good, func(k *JWK) { k.X += "==" })), nil},
		{"standard base64 alphabet", set(mod(good, func(k *JWK) {
			k.X = strings.NewReplacer("-", "+", "_", "/").Replace(k.X)
			if !strings.ContainsAny(k.X, "+/") {
				k.X = "+" + k.X[1:]
			}
		})), nil},
		{"curve mismatch", set(mod(good, func(k *JWK) { k.Crv = "P-256" })), nil},
		{"missing y", set(mod(good, func(k *JWK) { k.Y = "" })), nil},
		{"Ed25519 short", set(mod(ed, func(k *JWK) { k.X = k.X[:20] })), nil},
		{"Ed25519 with y", set(mod(ed, func(k *JWK) { k.Y = k.X })), nil},
		{"empty kid", set(mod(good, func(k *JWK) { k.Kid = "" })), nil},
		{"duplicate kid", set(good, mod(ed, func(k *JWK) { k.Kid = "good" })), nil},
		{"RSA skipped", `{"keys":[{"kty":"RSA","kid":"rsa","n":"AQAB","e":"AQAB"},` + set(good)[9:], []string{"good"}},
		{"unknown curve skipped", set(mod(good, func(k *JWK) { k.Crv = "secp256k1"; k.Kid = "k1" }), ed), []string{"ed"}},
		{"Ed448 skipped", set(mod(ed, func(k *JWK) { k.Crv = "Ed448" }), good), []string{"good"}},
		{"encryption key skipped", set(mod(good, func(k *JWK) { k.Use = "enc"; k.Kid = "enc" }), ed), []string{"ed"}},
		{"skipped key may share kid", set(mod(good, func(k *JWK) { k.Kty = "oct" }), good), []string{"good"}},
		{"empty set", `{"keys":[]}`, []string{}},
		{"no keys member", `{}`, nil},
		{"null keys", `{"keys":null}`, nil},
		{"not JSON", `not json`, nil},
		{"keys not an array", `{"keys":{}}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := ParseJWKS([]byte(tt.data))
			if tt.want == nil {
				if err == nil {
					t.Fatalf("ParseJWKS accepted %s: %v", tt.data, keys)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseJWKS(%s): %v", tt.data, err)
			}
			if len(keys) != len(tt.want) {
				t.Fatalf("keys = %v, want kids %q", keys, tt.want)
			}
			for _, kid := range tt.want {
				if _, ok := keys[kid]; !ok {
					t.Fatalf("kid %q missing from %v", kid, keys)
				}
			}
		})
	}
}
