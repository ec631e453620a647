package httpsig

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// independentVerify checks a signed request straight from the README's
// description of the scheme. It deliberately shares nothing with the
// package: its own regexp parsing of signature-input, its own signature base,
// and the standard library's verification primitives. It returns the covered
// components.
func independentVerify(t *testing.T, req *http.Request, body []byte, pub crypto.PublicKey, version int) []string {
	t.Helper()
	if got := req.Header.Get("upvest-signature-version"); got != strconv.Itoa(version) {
		t.Fatalf("upvest-signature-version = %q, want %d", got, version)
	}

	// signature-input: sig1=("@method" "@path" ...);keyid="<id>";created=<unix>;nonce="<random>";expires=<unix>
	input := req.Header.Get("signature-input")
	m := regexp.MustCompile(`^sig1=(\(((?:"[^"\\]+" ?)*)\);keyid="([^"\\]*)";created=(\d+);nonce="([^"\\]*)";expires=(\d+))$`).FindStringSubmatch(input)
	if m == nil {
		t.Fatalf("signature-input does not have the README's shape: %s", input)
	}
	signatureParams, list := m[1], m[2]
	created, _ := strconv.ParseInt(m[4], 10, 64)
	expires, _ := strconv.ParseInt(m[6], 10, 64)
	if expires-created != 60 {
		t.Errorf("expires - created = %d, want the default 60", expires-created)
	}
	var components []string
	for _, c := range regexp.MustCompile(`"([^"]+)"`).FindAllStringSubmatch(list, -1) {
		components = append(components, c[1])
	}
	if strings.Join(components, " ") != strings.ReplaceAll(list, `"`, "") {
		t.Fatalf("component list %q is not space-separated quoted names", list)
	}

	// The body: exact bytes, exact length, and the digest header.
	if len(body) > 0 {
		if req.ContentLength != int64(len(body)) {
			t.Errorf("req.ContentLength = %d, want %d", req.ContentLength, len(body))
		}
		sent, err := io.ReadAll(req.Body)
		if err != nil || !bytes.Equal(sent, body) {
			t.Errorf("req.Body = %q, %v; want the signed body", sent, err)
		}
		if version == 15 {
			sum := sha512.Sum512(body)
			if got, want := req.Header.Get("content-digest"), "sha-512=:"+base64.StdEncoding.EncodeToString(sum[:])+":"; got != want {
				t.Errorf("content-digest = %q, want %q", got, want)
			}
		} else {
			sum := sha256.Sum256(body)
			if got, want := req.Header.Get("digest"), "SHA-256="+base64.StdEncoding.EncodeToString(sum[:]); got != want {
				t.Errorf("digest = %q, want %q", got, want)
			}
		}
		if got := req.Header.Get("content-length"); got != strconv.Itoa(len(body)) {
			t.Errorf("content-length header = %q, want %d", got, len(body))
		}
	}

	// The base: one line per component, then the @signature-params line,
	// joined by \n; version 6 writes the names without quotes.
	name := func(n string) string {
		if version == 15 {
			return `"` + n + `"`
		}
		return n
	}
	var lines []string
	for _, c := range components {
		var v string
		switch c {
		case "@method":
			v = strings.ToUpper(req.Method)
		case "@path":
			v = req.URL.Path
		case "@query":
			v = "?" + req.URL.RawQuery
		default:
			vals := req.Header.Values(c)
			if len(vals) == 0 {
				t.Fatalf("covered header %q not in the request", c)
			}
			v = strings.Join(vals, ", ")
		}
		lines = append(lines, name(c)+": "+v)
	}
	lines = append(lines, name("@signature-params")+": "+signatureParams)
	base := []byte(strings.Join(lines, "\n"))

	sm := regexp.MustCompile(`^sig1=:([A-Za-z0-9+/]+=*):$`).FindStringSubmatch(req.Header.Get("signature"))
	if sm == nil {
		t.Fatalf("signature header %q is not sig1=:<base64>:", req.Header.Get("signature"))
	}
	sig, err := base64.StdEncoding.DecodeString(sm[1])
	if err != nil {
		t.Fatalf("signature is not standard base64: %v", err)
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		sum := sha512.Sum512(base) // SHA-512 whatever the curve
		if !ecdsa.VerifyASN1(k, sum[:], sig) {
			t.Fatalf("ECDSA signature does not verify over base:\n%s", base)
		}
	case ed25519.PublicKey:
		if !ed25519.Verify(k, base, sig) {
			t.Fatalf("Ed25519 signature does not verify over base:\n%s", base)
		}
	default:
		t.Fatalf("unexpected key type %T", pub)
	}
	return components
}

func TestSignerIndependentVerifier(t *testing.T) {
	tests := []struct {
		shape   requestShape
		version int
		want    []string
	}{
		{shapes[0], 15, []string{"@method", "@path", "@query", "accept", "authorization", "upvest-client-id"}},
		{shapes[1], 15, []string{"@method", "@path", "accept", "authorization", "content-type", "content-length", "content-digest", "idempotency-key", "upvest-client-id"}},
		{shapes[2], 15, []string{"@method", "@path", "accept", "content-type", "content-length", "content-digest", "upvest-client-id"}},
		{shapes[3], 15, []string{"@method", "@path", "content-type", "content-length", "content-digest", "upvest-client-id"}},
		{shapes[0], 6, []string{"@method", "@path", "@query", "upvest-client-id"}},
		{shapes[1], 6, []string{"@method", "@path", "content-type", "content-length", "digest", "upvest-client-id"}},
		{shapes[3], 6, []string{"@method", "@path", "content-type", "content-length", "digest", "upvest-client-id"}},
	}
	for _, kc := range testKeys(t) {
		for _, tt := range tests {
			t.Run(kc.name+"/v"+strconv.Itoa(tt.version)+"/"+tt.shape.name, func(t *testing.T) {
				req, body := tt.shape.build(t)
				s, err := NewSigner(kc.key, "key-1", WithVersion(tt.version)) // real clock and nonce
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Sign(req, body); err != nil {
					t.Fatal(err)
				}
				got := independentVerify(t, req, body, kc.key.Public(), tt.version)
				if !slices.Equal(got, tt.want) {
					t.Errorf("covered components = %q, want %q", got, tt.want)
				}
			})
		}
	}
}

func TestSignerExactSignatureInput(t *testing.T) {
	key := testKey(t, "P-256")
	tests := []struct {
		shape   requestShape
		opts    []SignerOption
		want    string
		version string
	}{
		{
			shape:   shapes[0],
			want:    `sig1=("@method" "@path" "@query" "accept" "authorization" "upvest-client-id");keyid="key-1";created=1700000000;nonce="n0nce";expires=1700000060`,
			version: "15",
		},
		{
			shape:   shapes[2],
			opts:    []SignerOption{WithValidity(5 * time.Minute)},
			want:    `sig1=("@method" "@path" "accept" "content-type" "content-length" "content-digest" "upvest-client-id");keyid="key-1";created=1700000000;nonce="n0nce";expires=1700000300`,
			version: "15",
		},
		{
			shape:   shapes[3],
			opts:    []SignerOption{WithVersion(6)},
			want:    `sig1=("@method" "@path" "content-type" "content-length" "digest" "upvest-client-id");keyid="key-1";created=1700000000;nonce="n0nce";expires=1700000060`,
			version: "6",
		},
	}
	for _, tt := range tests {
		t.Run(tt.shape.name, func(t *testing.T) {
			req, body := tt.shape.build(t)
			if err := mustSigner(t, key, tt.opts...).Sign(req, body); err != nil {
				t.Fatal(err)
			}
			if got := req.Header.Get("Signature-Input"); got != tt.want {
				t.Errorf("signature-input =\n%s\nwant\n%s", got, tt.want)
			}
			if got := req.Header.Get("Upvest-Signature-Version"); got != tt.version {
				t.Errorf("upvest-signature-version = %q, want %q", got, tt.version)
			}
			for _, h := range []string{"Accept-Encoding", "User-Agent"} {
				if strings.Contains(req.Header.Get("Signature-Input"), strings.ToLower(h)) {
					t.Errorf("%s must not be covered", h)
				}
			}
		})
	}
}

func TestSignerDefaultNonce(t *testing.T) {
	s, err := NewSigner(testKey(t, "Ed25519"), "key-1")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	re := regexp.MustCompile(`;nonce="([A-Za-z0-9_-]{22})";`)
	for range 100 {
		req, body := getWithQuery(t)
		if err := s.Sign(req, body); err != nil {
			t.Fatal(err)
		}
		m := re.FindStringSubmatch(req.Header.Get("Signature-Input"))
		if m == nil {
			t.Fatalf("no 16-byte base64url nonce in %s", req.Header.Get("Signature-Input"))
		}
		if seen[m[1]] {
			t.Fatalf("nonce %s repeated", m[1])
		}
		seen[m[1]] = true
	}
}

func TestNewSignerRejects(t *testing.T) {
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	good := testKey(t, "P-256")
	tests := []struct {
		name  string
		key   crypto.Signer
		keyID string
		opts  []SignerOption
	}{
		{"nil key", nil, "k", nil},
		{"P-224", p224, "k", nil},
		{"RSA", rsaKey, "k", nil},
		{"empty key id", good, "", nil},
		{"key id with newline", good, "k\nx", nil},
		{"version 7", good, "k", []SignerOption{WithVersion(7)}},
		{"zero validity", good, "k", []SignerOption{WithValidity(0)}},
		{"sub-second validity", good, "k", []SignerOption{WithValidity(time.Millisecond)}},
		{"nil clock", good, "k", []SignerOption{WithClock(nil)}},
		{"nil nonce", good, "k", []SignerOption{WithNonce(nil)}},
		{"private and public halves differ", mismatchedSigner{good, testKey(t, "P-384").Public()}, "k", nil},
		{"Ed25519 halves differ", mismatchedSigner{testKey(t, "Ed25519"), mustEd25519(t).Public()}, "k", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := NewSigner(tt.key, tt.keyID, tt.opts...); err == nil {
				t.Fatalf("NewSigner accepted it: %+v", s)
			}
		})
	}
}

// mismatchedSigner is a misconfigured signer (think KMS) whose public key is
// not the one it signs with.
type mismatchedSigner struct {
	crypto.Signer
	pub crypto.PublicKey
}

func (m mismatchedSigner) Public() crypto.PublicKey { return m.pub }

func mustEd25519(t testing.TB) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSignErrors(t *testing.T) {
	key := testKey(t, "Ed25519")
	tests := []struct {
		name  string
		opts  []SignerOption
		build func(tb testing.TB) (*http.Request, []byte)
	}{
		{"body without content-type", nil, func(t testing.TB) (*http.Request, []byte) {
			req, body := postWithBody(t)
			req.Header.Del("Content-Type")
			return req, body
		}},
		{"header with newline", nil, func(t testing.TB) (*http.Request, []byte) {
			req, body := postWithBody(t)
			req.Header["Idempotency-Key"] = []string{"a\r\nX-Injected: 1"}
			return req, body
		}},
		{"method not a token", nil, func(t testing.TB) (*http.Request, []byte) {
			req, body := getWithQuery(t)
			req.Method = "GET /x"
			return req, body
		}},
		{"bad nonce", []SignerOption{WithNonce(func() string { return "a\"b\n" })}, getWithQuery},
		{"empty nonce", []SignerOption{WithNonce(func() string { return "" })}, getWithQuery},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, body := tt.build(t)
			req.Header.Set("Signature", "sig1=:c3RhbGU=:") // stale, from an earlier attempt
			if err := mustSigner(t, key, tt.opts...).Sign(req, body); err == nil {
				t.Fatal("Sign succeeded")
			}
			if req.Header.Get("Signature") != "" {
				t.Error("a failed Sign left a signature on the request")
			}
		})
	}
}

// TestSignBodyHandling checks that what net/http sends is exactly what was
// signed, including after the caller reuses its buffer and on re-sign.
func TestSignBodyHandling(t *testing.T) {
	key := testKey(t, "Ed25519")
	s := mustSigner(t, key)

	req, body := postWithBody(t)
	req.Body = io.NopCloser(strings.NewReader("something else"))
	req.TransferEncoding = []string{"chunked"}
	orig := bytes.Clone(body)
	if err := s.Sign(req, body); err != nil {
		t.Fatal(err)
	}
	for i := range body {
		body[i] = 'x' // caller reuses its buffer
	}
	var wire bytes.Buffer
	if err := req.Write(&wire); err != nil {
		t.Fatal(err)
	}
	got, err := http.ReadRequest(bufio.NewReader(&wire))
	if err != nil {
		t.Fatal(err)
	}
	sent, _ := io.ReadAll(got.Body)
	if !bytes.Equal(sent, orig) {
		t.Fatalf("sent body %q, want %q", sent, orig)
	}
	if got.ContentLength != int64(len(orig)) || len(got.TransferEncoding) != 0 {
		t.Fatalf("sent ContentLength=%d TransferEncoding=%q", got.ContentLength, got.TransferEncoding)
	}
	rb, err := req.GetBody()
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := io.ReadAll(rb); !bytes.Equal(again, orig) {
		t.Fatalf("GetBody returned %q", again)
	}

	// Re-signing the same request without a body drops the stale digest.
	if err := s.Sign(req, nil); err != nil {
		t.Fatal(err)
	}
	if req.Header.Get("Content-Digest") != "" || req.Header.Get("Content-Length") != "" || req.ContentLength != 0 || req.Body != http.NoBody {
		t.Fatalf("stale body state after re-sign: %v", req.Header)
	}
	if strings.Contains(req.Header.Get("Signature-Input"), "content-digest") {
		t.Fatal("content-digest covered without a body")
	}
}

// TestSignOverHTTP sends signed requests through a real net/http client and
// server: the transport adds user-agent and accept-encoding and sets
// content-length itself, and none of that may break the signature.
func TestSignOverHTTP(t *testing.T) {
	key := testKey(t, "P-521")
	got := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err == nil {
			_, err = Verify(r.Context(), r, body, resolverFor(key.Public()), VerifyOptions{Required: []string{"@method", "@path"}})
		}
		got <- err
	}))
	defer srv.Close()
	for _, shape := range shapes {
		for _, version := range []int{15, 6} {
			t.Run(shape.name+"/v"+strconv.Itoa(version), func(t *testing.T) {
				req, body := shape.build(t)
				u := *req.URL
				u.Scheme, u.Host = "http", strings.TrimPrefix(srv.URL, "http://")
				req.URL, req.Host = &u, ""
				s, err := NewSigner(key, "key-1", WithVersion(version))
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Sign(req, body); err != nil {
					t.Fatal(err)
				}
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if err := <-got; err != nil {
					t.Fatalf("server-side Verify: %v", err)
				}
			})
		}
	}
}
