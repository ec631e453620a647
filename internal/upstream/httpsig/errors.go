package httpsig

import (
	"errors"
	"fmt"
)

// Reasons reported in VerifyError.Reason. They are part of the API: callers
// map them to 401 problem types and metrics, so they never change meaning.
const (
	// ReasonMissingSignature: no signature-input or no signature header.
	ReasonMissingSignature = "missing_signature"
	// ReasonMalformedSignatureInput: signature-input does not parse or lacks
	// required parameters (keyid, created, components).
	ReasonMalformedSignatureInput = "malformed_signature_input"
	// ReasonMalformedSignature: the signature header does not parse or its
	// member is not a byte sequence.
	ReasonMalformedSignature = "malformed_signature"
	// ReasonLabelMismatch: the signature header has no member with the label
	// chosen from signature-input.
	ReasonLabelMismatch = "label_mismatch"
	// ReasonUnsupportedVersion: upvest-signature-version is neither 15 nor 6.
	ReasonUnsupportedVersion = "unsupported_version"
	// ReasonMissingComponent: a required component is not covered, or a
	// covered component is absent from the request.
	ReasonMissingComponent = "missing_component"
	// ReasonUnsupportedComponent: a covered derived component (@...) this
	// package does not implement.
	ReasonUnsupportedComponent = "unsupported_component"
	// ReasonInvalidComponent: a covered component name or value cannot be
	// placed in a signature base unambiguously (control characters, upper
	// case or duplicate names).
	ReasonInvalidComponent = "invalid_component"
	// ReasonDigestMismatch: the covered body digest is malformed, lacks the
	// mandatory algorithm, or does not match the body.
	ReasonDigestMismatch = "digest_mismatch"
	// ReasonContentLengthMismatch: the covered content-length does not match
	// the body.
	ReasonContentLengthMismatch = "content_length_mismatch"
	// ReasonExpired: expires has passed, or created is older than MaxAge.
	ReasonExpired = "expired"
	// ReasonNotYetValid: created lies in the future beyond the allowed skew.
	ReasonNotYetValid = "not_yet_valid"
	// ReasonUnknownKey: the resolver did not return a key for keyid.
	ReasonUnknownKey = "unknown_key"
	// ReasonUnsupportedKey: the resolver returned a key type or curve this
	// package does not verify with.
	ReasonUnsupportedKey = "unsupported_key"
	// ReasonBadSignature: the cryptographic check failed.
	ReasonBadSignature = "bad_signature"
)

// VerifyError is the only error type Verify returns. Detail is meant for
// logs: it names components and parameters but never carries header values,
// which may hold bearer tokens.
type VerifyError struct {
	Reason string // one of the Reason* constants
	Detail string // human-readable, free of secrets
	Err    error  // underlying cause, e.g. the key resolver's error; may be nil
}

func (e *VerifyError) Error() string {
	msg := "httpsig: " + e.Reason
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap exposes the cause so callers can tell, say, a JWKS fetch failure
// (retryable) from an unknown key id.
func (e *VerifyError) Unwrap() error { return e.Err }

// ReasonOf returns the Reason of the first *VerifyError in err's chain, or ""
// when there is none.
func ReasonOf(err error) string {
	var ve *VerifyError
	if errors.As(err, &ve) {
		return ve.Reason
	}
	return ""
}

func verifyErr(reason, format string, args ...any) *VerifyError {
	return &VerifyError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Sentinel errors, matched with errors.Is.
var (
	// ErrMissingComponent: SignatureBase was asked for a component the
	// request does not carry.
	ErrMissingComponent = errors.New("httpsig: component not present in the request")
	// ErrUnsupportedComponent: a derived component this package does not
	// implement.
	ErrUnsupportedComponent = errors.New("httpsig: unsupported derived component")
	// ErrInvalidComponent: a component name or value that cannot be written
	// into a signature base without ambiguity.
	ErrInvalidComponent = errors.New("httpsig: invalid component")
	// ErrUnsupportedKey: a key type or curve outside ECDSA P-256/P-384/P-521
	// and Ed25519.
	ErrUnsupportedKey = errors.New("httpsig: unsupported key type or curve")
	// ErrPassphraseRequired: the PEM key is encrypted and no passphrase was
	// given.
	ErrPassphraseRequired = errors.New("httpsig: private key is encrypted and no passphrase was given")
	// ErrIncorrectPassphrase: decryption failed or produced garbage.
	ErrIncorrectPassphrase = errors.New("httpsig: incorrect passphrase for private key")
	// ErrUnknownKeyID is returned by StaticKeys for key ids it does not hold.
	ErrUnknownKeyID = errors.New("httpsig: unknown key id")
)
