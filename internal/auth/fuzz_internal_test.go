package auth

import (
	"bytes"
	"testing"
)

// FuzzParseJWKS: a key set from a URL or a file never panics the parser,
// a set that loads has a usable key, and an error never quotes the input.
func FuzzParseJWKS(f *testing.F) {
	for _, s := range []string{
		`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"ed"}]}`,
		`{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","kid":"ec","alg":"ES256"}]}`,
		`{"keys":[{"kty":"oct","k":"AAAA","kid":"h"}]}`,
		`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"r"}]}`,
		`{"keys":[]}`, `{}`, `[]`, `{"keys":[1]}`, `{"keys":[{"kty":"EC","d":"AA"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := parseJWKS(data)
		if err != nil {
			if len(data) >= 24 && bytes.Contains([]byte(err.Error()), data) {
				t.Fatalf("error quotes the input: %v", err)
			}
			return
		}
		if len(set.byKID) == 0 {
			t.Fatal("a set without keys loaded")
		}
		for kid, k := range set.byKID {
			if k.KeyID != kid || !k.IsPublic() {
				t.Fatalf("key %q: %+v", kid, k)
			}
		}
	})
}
