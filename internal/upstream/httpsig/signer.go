package httpsig

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Signature versions, as sent in upvest-signature-version.
const (
	Version15 = 15 // API calls: quoted base names, content-digest (SHA-512)
	Version6  = 6  // webhook deliveries: unquoted base names, digest (SHA-256)
)

// Header names this package reads and writes.
const (
	HeaderSignature        = "Signature"
	HeaderSignatureInput   = "Signature-Input"
	HeaderSignatureVersion = "Upvest-Signature-Version"
	HeaderContentDigest    = "Content-Digest"
	HeaderDigest           = "Digest"
)

const (
	// DefaultValidity is how long a signature stays valid: short, so a
	// captured request cannot be replayed for long.
	DefaultValidity = 60 * time.Second
	// DefaultLabel is the signature label Upvest uses.
	DefaultLabel = "sig1"
)

// Signer signs outgoing requests to Upvest. It is immutable after NewSigner
// and safe for concurrent use, provided the clock and nonce functions are.
type Signer struct {
	key      crypto.Signer
	keyID    string
	version  int
	validity time.Duration
	now      func() time.Time
	nonce    func() string
}

// SignerOption configures a Signer.
type SignerOption func(*Signer)

// WithVersion selects the signature version: Version15 (the default, for API
// calls) or Version6 (the webhook dialect, useful for tests and replays).
func WithVersion(v int) SignerOption { return func(s *Signer) { s.version = v } }

// WithValidity sets expires = created + d (default 60s). d is truncated to
// whole seconds and must be at least one second.
func WithValidity(d time.Duration) SignerOption { return func(s *Signer) { s.validity = d } }

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) SignerOption { return func(s *Signer) { s.now = now } }

// WithNonce replaces the nonce generator, for tests. The nonce must be
// non-empty printable ASCII.
func WithNonce(f func() string) SignerOption { return func(s *Signer) { s.nonce = f } }

// NewSigner returns a Signer for key, announced to Upvest as keyID. key may
// be any crypto.Signer whose public key is ECDSA on P-256, P-384 or P-521, or
// Ed25519; other types, and keys whose private half does not match the
// public one (checked by signing a test message), are refused here rather
// than on the first request.
func NewSigner(key crypto.Signer, keyID string, opts ...SignerOption) (*Signer, error) {
	if key == nil {
		return nil, errors.New("httpsig: nil signing key")
	}
	if err := checkPublicKey(key.Public()); err != nil {
		return nil, fmt.Errorf("httpsig: signing key %T: %w", key.Public(), err)
	}
	if err := selfTest(key); err != nil {
		return nil, fmt.Errorf("httpsig: signing key self-test: %w", err)
	}
	if keyID == "" || !isSFStringSafe(keyID) {
		return nil, errors.New("httpsig: key id must be non-empty printable ASCII")
	}
	s := &Signer{
		key:      key,
		keyID:    keyID,
		version:  Version15,
		validity: DefaultValidity,
		now:      time.Now,
		nonce:    randomNonce,
	}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	switch {
	case s.version != Version15 && s.version != Version6:
		return nil, fmt.Errorf("httpsig: unsupported signature version %d", s.version)
	case s.validity < time.Second:
		return nil, errors.New("httpsig: validity must be at least one second")
	case s.now == nil:
		return nil, errors.New("httpsig: nil clock")
	case s.nonce == nil:
		return nil, errors.New("httpsig: nil nonce generator")
	}
	return s, nil
}

// randomNonce returns 16 random bytes, base64url-encoded: enough that Upvest
// can reject replays by nonce without collisions.
func randomNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails; it crashes the program instead
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// KeyID returns the key id announced in signature-input.
func (s *Signer) KeyID() string { return s.keyID }

// Version returns the signature version the Signer writes.
func (s *Signer) Version() int { return s.version }

// Public returns the public half of the signing key, e.g. to publish it with
// MarshalPublicKeyPEM or NewJWK.
func (s *Signer) Public() crypto.PublicKey { return s.key.Public() }

// Sign adds the signature headers to req. body is the exact body that will be
// sent (nil or empty for none).
//
// So that the bytes on the wire are the bytes signed, Sign replaces req.Body
// and req.GetBody with readers over a private copy of body, sets
// req.ContentLength = len(body) and clears req.TransferEncoding (no chunked
// bodies). With a body it sets content-length and, for version 15,
// content-digest (version 6: digest); a content-type header is then
// required. It always sets upvest-signature-version, signature-input and
// signature.
//
// Sign first removes any previous signature, so on error req carries none
// and must not be sent.
func (s *Signer) Sign(req *http.Request, body []byte) error {
	if req == nil || req.URL == nil {
		return errors.New("httpsig: nil request or URL")
	}
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	h := req.Header
	h.Del(HeaderSignature)
	h.Del(HeaderSignatureInput)

	digestHeader, digestName := HeaderContentDigest, "content-digest"
	if s.version == Version6 {
		digestHeader, digestName = HeaderDigest, "digest"
	}

	hasBody := len(body) > 0
	req.TransferEncoding = nil
	if hasBody {
		if len(h.Values("Content-Type")) == 0 {
			return errors.New("httpsig: a request with a body needs a content-type header")
		}
		b := bytes.Clone(body) // the caller may reuse its buffer before the transport reads ours
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		req.ContentLength = int64(len(b))
		h.Set("Content-Length", strconv.Itoa(len(b)))
		if s.version == Version6 {
			h.Set(digestHeader, LegacyDigest(b))
		} else {
			h.Set(digestHeader, ContentDigest(b))
		}
	} else {
		req.Body = http.NoBody
		req.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
		req.ContentLength = 0
		h.Del("Content-Length")
		h.Del(digestHeader)
	}

	p := Params{
		Label:      DefaultLabel,
		Components: s.components(req, hasBody, digestName),
		KeyID:      s.keyID,
		Nonce:      s.nonce(),
	}
	if p.Nonce == "" || !isSFStringSafe(p.Nonce) {
		return errors.New("httpsig: nonce must be non-empty printable ASCII")
	}
	p.Created = s.now().Unix()
	p.Expires = p.Created + int64(s.validity/time.Second)

	base, err := SignatureBase(req, p, s.version)
	if err != nil {
		return err
	}
	sig, err := signBase(s.key, []byte(base))
	if err != nil {
		return fmt.Errorf("httpsig: signing failed: %w", err)
	}
	h.Set(HeaderSignatureVersion, strconv.Itoa(s.version))
	h.Set(HeaderSignatureInput, p.Label+"="+p.String())
	h.Set(HeaderSignature, p.Label+"=:"+base64.StdEncoding.EncodeToString(sig)+":")
	return nil
}

// components lists what the signature covers, in the order Upvest expects.
// Headers the transport adds itself (accept-encoding, user-agent) are never
// covered: their values are not known here.
func (s *Signer) components(req *http.Request, hasBody bool, digestName string) []string {
	has := func(name string) bool { return len(headerValues(req.Header, name)) > 0 }
	c := make([]string, 0, 10)
	c = append(c, "@method", "@path")
	if req.URL.RawQuery != "" {
		c = append(c, "@query")
	}
	if s.version == Version15 {
		if has("accept") {
			c = append(c, "accept")
		}
		if has("authorization") {
			c = append(c, "authorization")
		}
	}
	if hasBody {
		c = append(c, "content-type", "content-length", digestName)
	}
	if s.version == Version15 && has("idempotency-key") {
		c = append(c, "idempotency-key")
	}
	if has("upvest-client-id") {
		c = append(c, "upvest-client-id")
	}
	return c
}
