package httpsig

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// Fuzz targets. The seed corpora are built at run time (keys are generated,
// never committed). Run one with e.g.
//
//	go test -run='^$' -fuzz=FuzzVerify -fuzztime=10s ./internal/upstream/httpsig/

// FuzzParseSignatureInput: never panics, and whatever parses re-serializes
// to a fixed point (parse(serialize(parse(x))) == parse(x)), which is what
// makes the @signature-params line well-defined.
func FuzzParseSignatureInput(f *testing.F) {
	for _, s := range []string{
		`sig1=("@method" "@path" "@query" "accept" "authorization" "upvest-client-id");keyid="key-1";created=1700000000;nonce="n0nce";expires=1700000060`,
		`sig1=();created=1, sig2=("a" "b");keyid="k\"\\";alg="ed25519"`,
		`  a=( "x"  "y" );z;y=?0;x=-1.250;w=:AQID:;v=tok/en:1 ,	b=("c")`,
		`sig1=("a";sf)`, `sig1=:AAAA:`, `sig1`, `sig1=(`, `sig1=("a"), sig1=("b")`,
		`sig1=("a");x=123456789012345;y=123456789012.123`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		ps, err := ParseSignatureInput(header)
		if err != nil {
			return
		}
		members := make([]string, len(ps))
		for i, p := range ps {
			members[i] = p.Label + "=" + p.String()
		}
		again, err := ParseSignatureInput(strings.Join(members, ", "))
		if err != nil {
			t.Fatalf("re-serialization %q of %q does not parse: %v", strings.Join(members, ", "), header, err)
		}
		if len(again) != len(ps) {
			t.Fatalf("member count changed: %d -> %d", len(ps), len(again))
		}
		for i := range ps {
			a, b := ps[i], again[i]
			if a.String() != b.String() || a.Label != b.Label || !slices.Equal(a.Components, b.Components) ||
				a.KeyID != b.KeyID || a.Created != b.Created || a.Expires != b.Expires || a.Nonce != b.Nonce || a.Alg != b.Alg {
				t.Fatalf("round trip changed member %d: %+v -> %+v", i, a, b)
			}
		}
	})
}

// FuzzVerify: Verify never panics on arbitrary headers and bodies, and every
// failure is a *VerifyError with a Reason.
func FuzzVerify(f *testing.F) {
	key := testKey(f, "Ed25519")
	for _, shape := range shapes {
		for _, version := range []int{15, 6} {
			req, body := shape.build(f)
			if err := mustSigner(f, key, WithVersion(version)).Sign(req, body); err != nil {
				f.Fatal(err)
			}
			h := req.Header
			f.Add(req.Method, req.URL.RequestURI(), h.Get("Upvest-Signature-Version"), h.Get("Signature-Input"), h.Get("Signature"),
				h.Get("Content-Digest")+h.Get("Digest"), h.Get("Content-Length"), h.Get("Idempotency-Key"), body)
		}
	}
	f.Add("POST", "/", "6", `sig1=("digest" "content-length");keyid="key-1";created=1700000000`, "sig1=:AAAA:", "SHA-256=", "0", "", []byte{})
	keys := resolverFor(key.Public())
	f.Fuzz(func(t *testing.T, method, target, version, input, sig, digest, length, idem string, body []byte) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			u = &url.URL{Path: target}
		}
		req := &http.Request{Method: method, URL: u, Host: "api.upvest.test", Header: http.Header{
			"Upvest-Signature-Version": {version},
			"Signature-Input":          {input},
			"Signature":                {sig},
			"Content-Digest":           {digest},
			"Digest":                   {digest},
			"Content-Length":           {length},
			"Content-Type":             {"application/json"},
			"Idempotency-Key":          {idem},
			"Accept":                   {"application/json"},
			"Authorization":            {testToken},
			"Upvest-Client-Id":         {testClientID},
		}}
		if version == "" {
			delete(req.Header, "Upvest-Signature-Version")
		}
		claimedKey, claimedVersion, cerr := Claimed(req)
		var cve *VerifyError
		if cerr != nil && (!errors.As(cerr, &cve) || cve.Reason == "") {
			t.Fatalf("Claimed: error %T without a reason: %v", cerr, cerr)
		}
		v, err := Verify(context.Background(), req, body, keys, VerifyOptions{Now: fixedClock})
		if err == nil && (cerr != nil || claimedKey != v.KeyID || claimedVersion != v.Version) {
			t.Fatalf("Claimed = %q, %d, %v for a request Verify accepted with %+v", claimedKey, claimedVersion, cerr, v)
		}
		if err != nil {
			var ve *VerifyError
			if !errors.As(err, &ve) || ve.Reason == "" {
				t.Fatalf("error %T without a reason: %v", err, err)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Fatalf("error leaks the bearer token: %v", err)
			}
			return
		}
		if v.KeyID != "key-1" || len(v.Components) == 0 {
			t.Fatalf("accepted with %+v", v)
		}
		if len(body) > 0 && !slices.Contains(v.Components, "content-digest") && !slices.Contains(v.Components, "digest") {
			t.Fatalf("accepted a body without a covered digest: %+v", v)
		}
	})
}

// FuzzParseJWKS: never panics; every key it returns is usable and survives
// a NewJWK round trip.
func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(upvestExampleJWKS))
	var all []JWK
	for _, kc := range testKeys(f) {
		jwk, err := NewJWK(kc.name, kc.key.Public())
		if err != nil {
			f.Fatal(err)
		}
		all = append(all, jwk)
	}
	data, _ := json.Marshal(JWKS{Keys: all})
	f.Add(data)
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"},{"kty":"OKP","crv":"Ed25519","kid":"e","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"z","x":"AA","y":"AA"}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := ParseJWKS(data)
		if err != nil {
			return
		}
		for kid, pub := range keys {
			if kid == "" {
				t.Fatal("empty kid accepted")
			}
			if err := checkPublicKey(pub); err != nil {
				t.Fatalf("kid %q: unusable key accepted: %v", kid, err)
			}
			jwk, err := NewJWK(kid, pub)
			if err != nil {
				t.Fatalf("kid %q: NewJWK: %v", kid, err)
			}
			back, err := jwk.PublicKey()
			if err != nil || !back.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
				t.Fatalf("kid %q: JWK round trip: %v", kid, err)
			}
		}
	})
}

// FuzzParsePrivateKey: never panics, and every key it returns can sign.
func FuzzParsePrivateKey(f *testing.F) {
	for _, kc := range testKeys(f) {
		f.Add(pkcs8PEM(f, kc.key), []byte(nil))
		if ec, ok := kc.key.(*ecdsa.PrivateKey); ok {
			f.Add(sec1PEM(f, ec), []byte(nil))
			f.Add(legacyEncryptedPEM(f, ec, "pw", x509.PEMCipherAES256), []byte("pw"))
			f.Add(legacyEncryptedPEM(f, ec, "pw", x509.PEMCipherAES128), []byte("wrong"))
		}
	}
	f.Add([]byte("-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END EC PRIVATE KEY-----\n"), []byte("x"))
	f.Add([]byte("garbage"), []byte(nil))
	f.Fuzz(func(t *testing.T, pemBytes, pass []byte) {
		key, err := ParsePrivateKey(pemBytes, pass)
		if err != nil {
			if len(pass) > 3 && strings.Contains(err.Error(), string(pass)) {
				t.Fatalf("error echoes the passphrase: %v", err)
			}
			return
		}
		if _, err := NewSigner(key, "k"); err != nil {
			t.Fatalf("parsed key cannot sign: %v", err)
		}
	})
}

// Independent notions of "valid in HTTP" for the round-trip fuzzer.
func fuzzIsToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func fuzzIsFieldValue(s string) bool {
	for _, c := range []byte(s) {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func fuzzIsQuery(s string) bool {
	for _, c := range []byte(s) {
		if c <= 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// FuzzSignatureBase: the base builder never panics on arbitrary methods,
// paths, queries, header values and component names, never emits more
// lines than components; and a Signer round trip through Verify succeeds
// for every input that is valid HTTP, in memory and after going through
// net/http's wire format.
func FuzzSignatureBase(f *testing.F) {
	f.Add("POST", "/payments/withdrawals", "", "application/json", testToken, testIdemKey, "application/json", []byte(`{"a":1}`), `@method @path content-digest`, false)
	f.Add("get", "/account_groups/x/payments/topups", "limit=10&order=DESC", "", "Bearer x", "", "", []byte(nil), `@query accept`, true)
	f.Add("DELETE", "/a b/%zz/é", "a=1;b=%20", " \tpadded\t ", "x\x80\xff", "tab\tinside", "text/plain; charset=utf-8", []byte("\x00"), `"@path" Content-Type x-a\nb`, false)
	f.Add("GE T", "", "a\nb", "a\r\nInjected: 1", "", "", "", []byte{}, "@nope \n", true)
	f.Add("POST", "//double", "#frag", "\x7f", "", "", "", []byte("x"), "", false)
	key := testKey(f, "Ed25519")
	signers := map[int]*Signer{15: mustSigner(f, key), 6: mustSigner(f, key, WithVersion(6))}
	keys := resolverFor(key.Public())

	f.Fuzz(func(t *testing.T, method, path, query, accept, auth, idem, ctype string, body []byte, comps string, v6 bool) {
		version := 15
		if v6 {
			version = 6
		}
		newRequest := func() *http.Request {
			return &http.Request{
				Method: method,
				URL:    &url.URL{Scheme: "https", Host: "api.upvest.test", Path: path, RawQuery: query},
				Host:   "api.upvest.test",
				Header: http.Header{
					"Accept":           {accept},
					"Authorization":    {auth},
					"Idempotency-Key":  {idem},
					"Content-Type":     {ctype},
					"Upvest-Client-Id": {testClientID},
				},
			}
		}

		// Arbitrary component names and parameters.
		names := strings.Split(comps, " ")
		p := Params{Label: "sig1", Components: names, KeyID: auth, Nonce: idem, Created: 1}
		if base, err := SignatureBase(newRequest(), p, version); err == nil {
			lines := strings.Split(base, "\n")
			if len(lines) != len(names)+1 {
				t.Fatalf("%d components gave %d lines:\n%s", len(names), len(lines), base)
			}
			for i, n := range names {
				want := n + ": "
				if version == 15 {
					want = `"` + n + `": `
				}
				if !strings.HasPrefix(lines[i], want) {
					t.Fatalf("line %d = %q, want prefix %q", i, lines[i], want)
				}
			}
		}

		// Signer round trip. Sign must fail exactly when a component it
		// covers is not valid HTTP. An empty Method is sent as GET by
		// net/http, so it is valid too; version 6 does not cover accept,
		// authorization or idempotency-key; content-type is covered only
		// with a body.
		valid := (method == "" || fuzzIsToken(method)) && fuzzIsQuery(query) &&
			(version == 6 || fuzzIsFieldValue(accept) && fuzzIsFieldValue(auth) && fuzzIsFieldValue(idem)) &&
			(len(body) == 0 || fuzzIsFieldValue(ctype))
		req := newRequest()
		err := signers[version].Sign(req, body)
		if !valid {
			if err == nil {
				t.Fatalf("Sign accepted invalid HTTP: method %q query %q", method, query)
			}
			return
		}
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		opts := VerifyOptions{Now: fixedClock, Required: []string{"@method", "@path", "upvest-client-id"}}
		if _, err := Verify(context.Background(), req, body, keys, opts); err != nil {
			t.Fatalf("in-memory Verify: %v", err)
		}

		// Through the wire format, as the upstream would see it. Only
		// requests net/http can put on a request line qualify, and
		// uncovered headers must be valid too (the Transport would
		// refuse them).
		if strings.EqualFold(method, http.MethodConnect) || path != "" && path[0] != '/' ||
			!fuzzIsFieldValue(accept) || !fuzzIsFieldValue(auth) || !fuzzIsFieldValue(idem) || !fuzzIsFieldValue(ctype) {
			return
		}
		var wire bytes.Buffer
		if err := req.Write(&wire); err != nil {
			t.Fatalf("req.Write: %v", err)
		}
		sent := wire.String()
		got, err := http.ReadRequest(bufio.NewReader(&wire))
		if err != nil {
			t.Fatalf("ReadRequest(%q): %v", sent, err)
		}
		gotBody, err := io.ReadAll(got.Body)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(context.Background(), got, gotBody, keys, opts); err != nil {
			t.Fatalf("Verify after the wire: %v\nrequest: %q", err, sent)
		}
	})
}
