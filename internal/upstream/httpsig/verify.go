package httpsig

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// KeyResolver returns the public key for a keyid taken from signature-input.
// keyID is attacker-controlled: resolvers must treat it as an opaque lookup
// key. An error (or a nil key) is reported as ReasonUnknownKey, with the error
// wrapped so callers can tell an unknown id from, say, a failed JWKS fetch.
type KeyResolver func(ctx context.Context, keyID string) (crypto.PublicKey, error)

// StaticKeys returns a KeyResolver over a fixed set of keys, such as the
// result of ParseJWKS. The map is copied.
func StaticKeys(keys map[string]crypto.PublicKey) KeyResolver {
	m := maps.Clone(keys)
	return func(_ context.Context, keyID string) (crypto.PublicKey, error) {
		if k, ok := m[keyID]; ok {
			return k, nil
		}
		return nil, ErrUnknownKeyID
	}
}

// VerifyOptions tunes Verify. The zero value is a sensible policy.
type VerifyOptions struct {
	Now func() time.Time // default time.Now
	// MaxSkew is the clock skew allowed for created and expires; default
	// 30s. Zero means the default; a negative value allows no skew.
	MaxSkew time.Duration
	// MaxAge bounds how old created may be even when expires is absent or
	// far away; default 5m. Zero means the default; negative is treated as
	// zero age.
	MaxAge time.Duration
	// IgnoreExpires leaves the expires parameter unchecked, so that MaxAge
	// alone bounds how old a signature may be: for a sender that retries a
	// request with its original signature long after its expires (Upvest
	// re-sending a webhook delivery), where a replay within MaxAge is
	// harmless. created in the future is refused all the same.
	IgnoreExpires bool
	// Required lists component names that must be covered, as they appear
	// in signature-input (`@method`, `content-digest`; surrounding quotes
	// are tolerated). The body digest (content-digest for version 15,
	// digest for version 6) is always required when the body is not empty.
	Required []string
}

// Default verification policy.
const (
	DefaultMaxSkew = 30 * time.Second
	DefaultMaxAge  = 5 * time.Minute
)

// Verified describes a request whose signature checked out.
type Verified struct {
	KeyID      string
	Version    int
	Components []string // covered components, in signed order
	Created    time.Time
	// Nonce is the signer's nonce, "" if none. Verify does not track
	// nonces; callers that need replay protection beyond the validity
	// window must remember them (or, for webhooks, de-duplicate events).
	Nonce   string
	Label   string    // the signature label used, e.g. "sig1"
	Expires time.Time // zero when the signature has no expires
}

// Verify checks the signature on req, whose body has been read into body.
//
// The version comes from upvest-signature-version ("15", "6"; absent means
// 15). Verify picks the signature labelled sig1, or the only one present,
// and then checks, in this order: the covered components are well-formed,
// present in the request and include opts.Required (plus the body digest
// when there is a body); the covered digest matches body; a covered
// content-length matches len(body); created and expires are within the
// window; and finally the cryptographic signature, with the key keys returns
// for keyid. The cheap, local checks come first so that junk never costs a
// key lookup or a signature verification.
//
// The algorithm follows the resolved key (ECDSA: SHA-512 of the base, ASN.1
// DER; Ed25519 over the raw base); the alg parameter is not trusted.
//
// Every error is a *VerifyError with a stable Reason.
func Verify(ctx context.Context, req *http.Request, body []byte, keys KeyResolver, opts VerifyOptions) (*Verified, error) {
	if req == nil || req.URL == nil {
		return nil, verifyErr(ReasonMissingSignature, "no request")
	}
	p, version, verr := claimed(req.Header)
	if verr != nil {
		return nil, verr
	}
	sig, verr := signatureBytes(strings.Join(req.Header.Values(HeaderSignature), ", "), p.Label)
	if verr != nil {
		return nil, verr
	}
	if verr := checkParams(p); verr != nil {
		return nil, verr
	}

	digestName := "content-digest"
	if version == Version6 {
		digestName = "digest"
	}
	required := opts.Required
	if len(body) > 0 {
		required = append(slices.Clip(required), digestName)
	}
	for _, r := range required {
		name := normalizeComponent(r)
		if !slices.Contains(p.Components, name) {
			return nil, verifyErr(ReasonMissingComponent, "required component %q is not covered", name)
		}
	}

	base, err := SignatureBase(req, p, version)
	if err != nil {
		return nil, baseError(err)
	}

	if verr := checkBody(req, p, body); verr != nil {
		return nil, verr
	}
	if verr := checkWindow(p, opts); verr != nil {
		return nil, verr
	}

	if keys == nil {
		return nil, verifyErr(ReasonUnknownKey, "no key resolver configured")
	}
	pub, err := keys(ctx, p.KeyID)
	if err != nil || pub == nil {
		return nil, &VerifyError{Reason: ReasonUnknownKey, Detail: "no key for keyid " + quoteShort(p.KeyID), Err: err}
	}
	if err := checkPublicKey(pub); err != nil {
		return nil, &VerifyError{Reason: ReasonUnsupportedKey, Detail: fmt.Sprintf("key for keyid %s is %T", quoteShort(p.KeyID), pub), Err: err}
	}
	if !verifyBase(pub, []byte(base), sig) {
		return nil, verifyErr(ReasonBadSignature, "signature does not verify under keyid %s", quoteShort(p.KeyID))
	}

	v := &Verified{
		KeyID:      p.KeyID,
		Version:    version,
		Components: slices.Clone(p.Components),
		Created:    time.Unix(p.Created, 0),
		Nonce:      p.Nonce,
		Label:      p.Label,
	}
	if p.Expires != 0 {
		v.Expires = time.Unix(p.Expires, 0)
	}
	return v, nil
}

// Claimed is what req's signature headers claim, unchecked: the key id of
// the signature Verify would check, and the version. For a receiver that
// verifies a sample of requests in full and only reads the others (a
// simulator beside a load test). Errors are *VerifyError.
func Claimed(req *http.Request) (keyID string, version int, err error) {
	p, version, verr := claimed(req.Header)
	if verr != nil {
		return "", 0, verr
	}
	return p.KeyID, version, nil
}

// claimed reads the version and the parameters of the signature to check.
func claimed(h http.Header) (Params, int, *VerifyError) {
	version, verr := signatureVersion(h)
	if verr != nil {
		return Params{}, 0, verr
	}
	inputs := h.Values(HeaderSignatureInput)
	if len(inputs) == 0 || len(h.Values(HeaderSignature)) == 0 {
		return Params{}, 0, verifyErr(ReasonMissingSignature, "signature-input or signature header absent")
	}
	// Several field lines form one dictionary (RFC 8941 §4.2).
	all, err := ParseSignatureInput(strings.Join(inputs, ", "))
	if err != nil {
		return Params{}, 0, &VerifyError{Reason: ReasonMalformedSignatureInput, Err: err}
	}
	p, ok := pickParams(all)
	if !ok {
		return Params{}, 0, verifyErr(ReasonMalformedSignatureInput, "%d signatures and none labelled %s", len(all), DefaultLabel)
	}
	return p, version, nil
}

func signatureVersion(h http.Header) (int, *VerifyError) {
	vals := h.Values(HeaderSignatureVersion)
	switch {
	case len(vals) == 0:
		return Version15, nil
	case len(vals) > 1:
		return 0, verifyErr(ReasonUnsupportedVersion, "several upvest-signature-version headers")
	}
	switch strings.TrimSpace(vals[0]) {
	case "15":
		return Version15, nil
	case "6":
		return Version6, nil
	}
	return 0, verifyErr(ReasonUnsupportedVersion, "upvest-signature-version must be 15 or 6")
}

// pickParams chooses sig1, or the only signature present. With several and
// no sig1 we refuse rather than guess which one the sender meant.
func pickParams(all []Params) (Params, bool) {
	for _, p := range all {
		if p.Label == DefaultLabel {
			return p, true
		}
	}
	if len(all) == 1 {
		return all[0], true
	}
	return Params{}, false
}

func signatureBytes(header, label string) ([]byte, *VerifyError) {
	members, err := parseDictionary(header)
	if err != nil {
		return nil, &VerifyError{Reason: ReasonMalformedSignature, Err: err}
	}
	for _, m := range members {
		if m.key != label {
			continue
		}
		if m.innerList || m.item.value.kind != sfBytes || len(m.item.value.bytes) == 0 {
			return nil, verifyErr(ReasonMalformedSignature, "signature %s is not a non-empty byte sequence", label)
		}
		return m.item.value.bytes, nil
	}
	return nil, verifyErr(ReasonLabelMismatch, "signature header has no member %s", label)
}

// checkParams enforces what Upvest always sends and what the checks below
// rely on: a keyid, a created time, and at least one covered component (an
// empty list would sign nothing about the request and be replayable onto
// any other).
func checkParams(p Params) *VerifyError {
	switch {
	case p.KeyID == "":
		return verifyErr(ReasonMalformedSignatureInput, "keyid missing")
	case p.Created <= 0:
		return verifyErr(ReasonMalformedSignatureInput, "created missing or not positive")
	case p.Expires < 0 || p.Expires != 0 && p.Expires < p.Created:
		return verifyErr(ReasonMalformedSignatureInput, "expires before created")
	case len(p.Components) == 0:
		return verifyErr(ReasonMalformedSignatureInput, "no covered components")
	}
	return nil
}

func normalizeComponent(name string) string {
	name = strings.TrimSpace(name)
	if len(name) >= 2 && name[0] == '"' && name[len(name)-1] == '"' {
		name = name[1 : len(name)-1]
	}
	return strings.ToLower(name)
}

func baseError(err error) *VerifyError {
	reason := ReasonMalformedSignatureInput
	switch {
	case errors.Is(err, ErrMissingComponent):
		reason = ReasonMissingComponent
	case errors.Is(err, ErrUnsupportedComponent):
		reason = ReasonUnsupportedComponent
	case errors.Is(err, ErrInvalidComponent):
		reason = ReasonInvalidComponent
	}
	return &VerifyError{Reason: reason, Err: err}
}

// checkBody verifies every covered digest against the body and a covered
// content-length against its length. The values were already validated by
// SignatureBase.
func checkBody(req *http.Request, p Params, body []byte) *VerifyError {
	// Digests first: a changed body is reported as digest_mismatch even
	// when its length changed too.
	for _, c := range p.Components {
		var err error
		switch c {
		case "content-digest":
			v, _ := componentValue(req, c)
			err = checkContentDigest(v, body)
		case "digest":
			v, _ := componentValue(req, c)
			err = checkLegacyDigest(v, body)
		}
		if err != nil {
			return &VerifyError{Reason: ReasonDigestMismatch, Err: err}
		}
	}
	if slices.Contains(p.Components, "content-length") {
		if v, _ := componentValue(req, "content-length"); v != strconv.Itoa(len(body)) {
			return verifyErr(ReasonContentLengthMismatch, "content-length does not match the body length %d", len(body))
		}
	}
	return nil
}

func checkWindow(p Params, opts VerifyOptions) *VerifyError {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	skew := opts.MaxSkew
	if skew == 0 {
		skew = DefaultMaxSkew
	} else if skew < 0 {
		skew = 0
	}
	maxAge := opts.MaxAge
	if maxAge == 0 {
		maxAge = DefaultMaxAge
	} else if maxAge < 0 {
		maxAge = 0
	}
	t := now()
	created := time.Unix(p.Created, 0)
	if created.After(t.Add(skew)) {
		return verifyErr(ReasonNotYetValid, "created is %s in the future", created.Sub(t).Round(time.Second))
	}
	if t.Sub(created) > maxAge+skew {
		return verifyErr(ReasonExpired, "created %s ago, more than the maximum age %s", t.Sub(created).Round(time.Second), maxAge)
	}
	if p.Expires != 0 && !opts.IgnoreExpires {
		if expires := time.Unix(p.Expires, 0); t.After(expires.Add(skew)) {
			return verifyErr(ReasonExpired, "expired %s ago", t.Sub(expires).Round(time.Second))
		}
	}
	return nil
}

// quoteShort quotes an attacker-supplied identifier for an error message,
// bounded so it cannot flood logs.
func quoteShort(s string) string {
	const limit = 64
	if len(s) > limit {
		s = s[:limit] + "..."
	}
	return strconv.Quote(s)
}
