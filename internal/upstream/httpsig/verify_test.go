package httpsig

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestVerifyAcceptsSignerOutput(t *testing.T) {
	for _, kc := range testKeys(t) {
		for _, version := range []int{15, 6} {
			for _, shape := range shapes {
				t.Run(kc.name+"/v"+strconv.Itoa(version)+"/"+shape.name, func(t *testing.T) {
					req, body := shape.build(t)
					if err := mustSigner(t, kc.key, WithVersion(version)).Sign(req, body); err != nil {
						t.Fatal(err)
					}
					v, err := Verify(context.Background(), req, body, resolverFor(kc.key.Public()), VerifyOptions{
						Now:      func() time.Time { return fixedNow.Add(10 * time.Second) },
						Required: []string{"@method", "@path", `"upvest-client-id"`},
					})
					if err != nil {
						t.Fatal(err)
					}
					if v.KeyID != "key-1" || v.Version != version || v.Nonce != "n0nce" || v.Label != "sig1" ||
						!v.Created.Equal(fixedNow) || !v.Expires.Equal(fixedNow.Add(time.Minute)) {
						t.Errorf("Verified = %+v", v)
					}
					want := "content-digest"
					if version == 6 {
						want = "digest"
					}
					if len(body) > 0 && !slices.Contains(v.Components, want) {
						t.Errorf("components %q lack %s", v.Components, want)
					}
				})
			}
		}
	}
}

func TestVerifyRejects(t *testing.T) {
	key := testKey(t, "P-256")
	other := testKey(t, "Ed25519")
	resolverErr := errors.New("jwks fetch failed")
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	later := func(d time.Duration) func(*VerifyOptions) {
		return func(o *VerifyOptions) { o.Now = func() time.Time { return fixedNow.Add(d) } }
	}
	setHeader := func(name, value string) func(*http.Request, []byte) []byte {
		return func(r *http.Request, b []byte) []byte {
			r.Header[http.CanonicalHeaderKey(name)] = []string{value}
			return b
		}
	}

	tests := []struct {
		name     string
		shape    func(testing.TB) (*http.Request, []byte)
		version  int
		signOpts []SignerOption
		mutate   func(*http.Request, []byte) []byte
		opts     func(*VerifyOptions)
		keys     KeyResolver
		reason   string
	}{
		{name: "tampered body", mutate: func(_ *http.Request, b []byte) []byte {
			return []byte(strings.Replace(string(b), "100.00", "900.00", 1))
		}, reason: ReasonDigestMismatch},
		{name: "tampered body v6", shape: webhookDelivery, version: 6, mutate: func(_ *http.Request, b []byte) []byte {
			return append(b, ' ')
		}, reason: ReasonDigestMismatch},
		{name: "tampered body with matching digest", mutate: func(r *http.Request, b []byte) []byte {
			b = []byte(strings.Replace(string(b), "100.00", "900.00", 1))
			r.Header.Set("Content-Digest", ContentDigest(b))
			return b
		}, reason: ReasonBadSignature},
		{name: "tampered covered header", mutate: setHeader("Idempotency-Key", "00000000-0000-4000-8000-000000000000"), reason: ReasonBadSignature},
		{name: "tampered authorization", shape: getWithQuery, mutate: setHeader("Authorization", "Bearer other"), reason: ReasonBadSignature},
		{name: "tampered query", shape: getWithQuery, mutate: func(r *http.Request, b []byte) []byte { r.URL.RawQuery = "limit=1000"; return b }, reason: ReasonBadSignature},
		{name: "tampered path", mutate: func(r *http.Request, b []byte) []byte { r.URL.Path = "/payments/direct_debits"; return b }, reason: ReasonBadSignature},
		{name: "tampered method", shape: getWithQuery, mutate: func(r *http.Request, b []byte) []byte { r.Method = http.MethodDelete; return b }, reason: ReasonBadSignature},
		{name: "tampered keyid", mutate: func(r *http.Request, b []byte) []byte {
			r.Header.Set("Signature-Input", strings.Replace(r.Header.Get("Signature-Input"), `keyid="key-1"`, `keyid="key-2"`, 1))
			return b
		}, keys: func(context.Context, string) (crypto.PublicKey, error) { return key.Public(), nil }, reason: ReasonBadSignature},
		{name: "tampered nonce", mutate: func(r *http.Request, b []byte) []byte {
			r.Header.Set("Signature-Input", strings.Replace(r.Header.Get("Signature-Input"), `nonce="n0nce"`, `nonce="n1nce"`, 1))
			return b
		}, reason: ReasonBadSignature},
		{name: "flipped signature bit", mutate: func(r *http.Request, b []byte) []byte {
			sig, _ := base64.StdEncoding.DecodeString(strings.TrimSuffix(strings.TrimPrefix(r.Header.Get("Signature"), "sig1=:"), ":"))
			sig[len(sig)/2] ^= 1
			r.Header.Set("Signature", "sig1=:"+base64.StdEncoding.EncodeToString(sig)+":")
			return b
		}, reason: ReasonBadSignature},
		{name: "downgrade to v6", shape: getWithQuery, mutate: setHeader("Upvest-Signature-Version", "6"), reason: ReasonBadSignature},
		{name: "downgrade to v6 with body", mutate: setHeader("Upvest-Signature-Version", "6"), reason: ReasonMissingComponent},
		{name: "wrong key", keys: resolverFor(other.Public()), reason: ReasonBadSignature},
		{name: "wrong key same curve", keys: func(context.Context, string) (crypto.PublicKey, error) {
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			return k.Public(), nil
		}, reason: ReasonBadSignature},
		{name: "expired", opts: later(2 * time.Minute), reason: ReasonExpired},
		{name: "expired within skew is fine", opts: later(85 * time.Second), reason: ""},
		{name: "expires past skew", opts: later(91 * time.Second), reason: ReasonExpired},
		{name: "created in the future", opts: later(-2 * time.Minute), reason: ReasonNotYetValid},
		{name: "created slightly in the future within skew", opts: later(-20 * time.Second), reason: ""},
		{name: "older than max age", signOpts: []SignerOption{WithValidity(time.Hour)}, opts: later(10 * time.Minute), reason: ReasonExpired},
		{name: "custom max age", signOpts: []SignerOption{WithValidity(time.Hour)}, opts: func(o *VerifyOptions) {
			o.Now = func() time.Time { return fixedNow.Add(10 * time.Minute) }
			o.MaxAge = time.Hour
		}, reason: ""},
		{name: "expired, expires ignored, within max age", opts: func(o *VerifyOptions) {
			o.Now = func() time.Time { return fixedNow.Add(10 * time.Minute) }
			o.MaxAge, o.IgnoreExpires = time.Hour, true
		}, reason: ""},
		{name: "expires ignored, older than max age", opts: func(o *VerifyOptions) {
			o.Now = func() time.Time { return fixedNow.Add(2 * time.Hour) }
			o.MaxAge, o.IgnoreExpires = time.Hour, true
		}, reason: ReasonExpired},
		{name: "expires ignored, created in the future", opts: func(o *VerifyOptions) {
			o.Now = func() time.Time { return fixedNow.Add(-2 * time.Minute) }
			o.IgnoreExpires = true
		}, reason: ReasonNotYetValid},
		{name: "no skew allowed", opts: func(o *VerifyOptions) {
			o.Now = func() time.Time { return fixedNow.Add(-time.Second) }
			o.MaxSkew = -1
		}, reason: ReasonNotYetValid},
		{name: "missing required component", opts: func(o *VerifyOptions) { o.Required = []string{"@method", "x-request-id"} }, reason: ReasonMissingComponent},
		{name: "missing required quoted component", opts: func(o *VerifyOptions) { o.Required = []string{`"@authority"`} }, reason: ReasonMissingComponent},
		{name: "body digest not covered", shape: getWithQuery, mutate: func(_ *http.Request, _ []byte) []byte { return []byte("{}") }, reason: ReasonMissingComponent},
		{name: "covered header removed", mutate: func(r *http.Request, b []byte) []byte { r.Header.Del("Idempotency-Key"); return b }, reason: ReasonMissingComponent},
		{name: "covered header with control character", mutate: setHeader("Idempotency-Key", "a\nb"), reason: ReasonInvalidComponent},
		{name: "content-length mismatch", mutate: setHeader("Content-Length", "1"), reason: ReasonContentLengthMismatch},
		{name: "unknown key id", keys: func(context.Context, string) (crypto.PublicKey, error) { return nil, resolverErr }, reason: ReasonUnknownKey},
		{name: "static keys miss", keys: StaticKeys(map[string]crypto.PublicKey{"other": key.Public()}), reason: ReasonUnknownKey},
		{name: "resolver returns nil key", keys: func(context.Context, string) (crypto.PublicKey, error) { return nil, nil }, reason: ReasonUnknownKey},
		{name: "nil resolver", keys: KeyResolver(nil), reason: ReasonUnknownKey},
		{name: "resolver returns RSA key", keys: func(context.Context, string) (crypto.PublicKey, error) { return rsaKey.Public(), nil }, reason: ReasonUnsupportedKey},
		{name: "resolver returns invalid EC key", keys: func(context.Context, string) (crypto.PublicKey, error) {
			return &ecdsa.PublicKey{Curve: elliptic.P256()}, nil
		}, reason: ReasonUnsupportedKey},
		{name: "no signature headers", mutate: func(r *http.Request, b []byte) []byte {
			r.Header.Del("Signature")
			r.Header.Del("Signature-Input")
			return b
		}, reason: ReasonMissingSignature},
		{name: "no signature header", mutate: func(r *http.Request, b []byte) []byte { r.Header.Del("Signature"); return b }, reason: ReasonMissingSignature},
		{name: "garbage signature-input", mutate: setHeader("Signature-Input", "sig1=(((garbage"), reason: ReasonMalformedSignatureInput},
		{name: "draft-01 signature-input", mutate: setHeader("Signature-Input", `sig1=(*request-target, *created, host); keyId="test-key-a"; alg=hs2019`), reason: ReasonMalformedSignatureInput},
		{name: "garbage signature", mutate: setHeader("Signature", "not a dictionary!"), reason: ReasonMalformedSignature},
		{name: "signature not bytes", mutate: setHeader("Signature", `sig1="abc"`), reason: ReasonMalformedSignature},
		{name: "signature label mismatch", mutate: func(r *http.Request, b []byte) []byte {
			r.Header.Set("Signature", strings.Replace(r.Header.Get("Signature"), "sig1=", "sig2=", 1))
			return b
		}, reason: ReasonLabelMismatch},
		{name: "two signatures none sig1", mutate: func(r *http.Request, b []byte) []byte {
			in := strings.TrimPrefix(r.Header.Get("Signature-Input"), "sig1=")
			r.Header.Set("Signature-Input", "a="+in+", b="+in)
			return b
		}, reason: ReasonMalformedSignatureInput},
		{name: "duplicate label", mutate: func(r *http.Request, b []byte) []byte {
			r.Header.Add("Signature-Input", r.Header.Get("Signature-Input"))
			return b
		}, reason: ReasonMalformedSignatureInput},
		{name: "unsupported version", mutate: setHeader("Upvest-Signature-Version", "7"), reason: ReasonUnsupportedVersion},
		{name: "two version headers", mutate: func(r *http.Request, b []byte) []byte {
			r.Header.Add("Upvest-Signature-Version", "15")
			return b
		}, reason: ReasonUnsupportedVersion},
		{name: "no created", mutate: setHeader("Signature-Input", `sig1=("@method");keyid="key-1"`), reason: ReasonMalformedSignatureInput},
		{name: "no keyid", mutate: setHeader("Signature-Input", `sig1=("@method");created=1700000000`), reason: ReasonMalformedSignatureInput},
		{name: "expires before created", mutate: setHeader("Signature-Input", `sig1=("@method");keyid="key-1";created=1700000000;expires=1699999999`), reason: ReasonMalformedSignatureInput},
		{name: "no components", shape: getWithQuery, mutate: setHeader("Signature-Input", `sig1=();keyid="key-1";created=1700000000`), reason: ReasonMalformedSignatureInput},
		{name: "created is a string", mutate: setHeader("Signature-Input", `sig1=("@method");keyid="key-1";created="1700000000"`), reason: ReasonMalformedSignatureInput},
		{name: "unsupported derived component", shape: getWithQuery, mutate: setHeader("Signature-Input", `sig1=("@target-uri");keyid="key-1";created=1700000000`), reason: ReasonUnsupportedComponent},
		{name: "upper-case component", shape: getWithQuery, mutate: setHeader("Signature-Input", `sig1=("Accept");keyid="key-1";created=1700000000`), reason: ReasonInvalidComponent},
		{name: "duplicate component", shape: getWithQuery, mutate: setHeader("Signature-Input", `sig1=("accept" "accept");keyid="key-1";created=1700000000`), reason: ReasonInvalidComponent},
		{name: "component with parameters", shape: getWithQuery, mutate: setHeader("Signature-Input", `sig1=("accept";sf);keyid="key-1";created=1700000000`), reason: ReasonMalformedSignatureInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shape := tt.shape
			if shape == nil {
				shape = postWithBody
			}
			version := tt.version
			if version == 0 {
				version = 15
			}
			req, body := shape(t)
			if err := mustSigner(t, key, append([]SignerOption{WithVersion(version)}, tt.signOpts...)...).Sign(req, body); err != nil {
				t.Fatal(err)
			}
			if tt.mutate != nil {
				body = tt.mutate(req, body)
			}
			opts := VerifyOptions{Now: fixedClock}
			if tt.opts != nil {
				tt.opts(&opts)
			}
			keys := tt.keys
			if keys == nil && tt.name != "nil resolver" {
				keys = resolverFor(key.Public())
			}
			v, err := Verify(context.Background(), req, body, keys, opts)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify accepted it: %+v", v)
			}
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("error %T is not a *VerifyError: %v", err, err)
			}
			if ve.Reason != tt.reason {
				t.Fatalf("Reason = %q, want %q (%v)", ve.Reason, tt.reason, err)
			}
			if ReasonOf(err) != tt.reason {
				t.Fatalf("ReasonOf = %q", ReasonOf(err))
			}
			// Errors go to logs: they must not echo the bearer token.
			if strings.Contains(err.Error(), "c2VjcmV0") || strings.Contains(err.Error(), testIdemKey) {
				t.Fatalf("error leaks a header value: %v", err)
			}
			if tt.name == "unknown key id" && !errors.Is(err, resolverErr) {
				t.Fatalf("resolver error not wrapped: %v", err)
			}
		})
	}
}

// TestVerifyLabels: sig1 is preferred when there are several signatures, a
// single signature under another label is accepted, and signature-input may
// arrive over several field lines.
func TestVerifyLabels(t *testing.T) {
	key := testKey(t, "Ed25519")
	req, body := webhookDelivery(t)
	if err := mustSigner(t, key, WithVersion(6)).Sign(req, body); err != nil {
		t.Fatal(err)
	}
	input, sig := req.Header.Get("Signature-Input"), req.Header.Get("Signature")
	tests := []struct {
		name      string
		inputs    []string
		sig       string
		wantLabel string // "" means rejected
	}{
		{"sig1", []string{input}, sig, "sig1"},
		{"sig1 among others", []string{`other=("@method");keyid="x";created=1, ` + input}, sig + `, other=:AAAA:`, "sig1"},
		// The label is not part of the base, so a lone signature verifies
		// under whatever label it carries.
		{"single other label", []string{strings.Replace(input, "sig1=", "upvest=", 1)}, strings.Replace(sig, "sig1=", "upvest=", 1), "upvest"},
		{"split over two field lines", []string{`zzz=("@method");keyid="x";created=1`, input}, sig, "sig1"},
		{"sig1 present but signature under other label", []string{input}, strings.Replace(sig, "sig1=", "upvest=", 1), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := req.Clone(context.Background())
			r.Header["Signature-Input"] = tt.inputs
			r.Header.Set("Signature", tt.sig)
			v, err := Verify(context.Background(), r, body, resolverFor(key.Public()), VerifyOptions{Now: fixedClock})
			if tt.wantLabel == "" {
				if err == nil {
					t.Fatal("Verify accepted it")
				}
				return
			}
			if err != nil || v.Label != tt.wantLabel {
				t.Fatalf("Verify = %+v, %v; want label %s", v, err, tt.wantLabel)
			}
		})
	}
}

// TestVerifyParamOrderPreserved: a peer that orders its parameters
// differently, or adds ones we do not know, still verifies, because the
// @signature-params line is rebuilt in received order.
func TestVerifyParamOrderPreserved(t *testing.T) {
	key := testKey(t, "P-521")
	req, body := webhookDelivery(t)
	req.Header.Set("Digest", LegacyDigest(body))
	req.Header.Set("Content-Length", strconv.Itoa(len(body)))
	req.Header.Set("Upvest-Signature-Version", "6")
	input := `sig1=("@method" "@path" "content-type" "content-length" "digest");alg="ecdsa-p521-sha512";created=1700000000;tag="upvest";expires=1700000060;keyid="key-1";nonce="abc"`
	req.Header.Set("Signature-Input", input)
	ps, err := ParseSignatureInput(input)
	if err != nil {
		t.Fatal(err)
	}
	base, err := SignatureBase(req, ps[0], 6)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(base, "\n@signature-params: "+strings.TrimPrefix(input, "sig1=")) {
		t.Fatalf("params line not as received:\n%s", base)
	}
	sig, err := signBase(key, []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Signature", "sig1=:"+base64.StdEncoding.EncodeToString(sig)+":")
	if _, err := Verify(context.Background(), req, body, resolverFor(key.Public()), VerifyOptions{Now: fixedClock}); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyNilRequest(t *testing.T) {
	_, err := Verify(context.Background(), nil, nil, nil, VerifyOptions{})
	if ReasonOf(err) != ReasonMissingSignature {
		t.Fatalf("Verify(nil) = %v", err)
	}
}
