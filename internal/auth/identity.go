package auth

import (
	"context"
	"crypto/x509"
	"errors"
	"unicode"
	"unicode/utf8"
)

// AnonymousIdentity is every caller's identity with WithUnauthenticated.
const AnonymousIdentity = "anonymous"

// maxIdentityBytes bounds an identity: it goes into logs and metadata.
const maxIdentityBytes = 1024

// Source is how a caller's identity was established.
type Source string

// Sources of an identity.
const (
	SourceClientCertificate Source = "client-certificate"
	SourceBearerToken       Source = "bearer-token"
	SourceAnonymous         Source = "anonymous"
)

// Caller is an authenticated caller.
type Caller struct {
	Identity string
	Source   Source
	REST     bool // the call came through the REST face
}

type callerKey struct{}

// CallerFromContext returns the caller the interceptors authenticated, in a
// handler's context.
func CallerFromContext(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// IdentityFromCertificate is the identity of a client certificate: its first
// URI SAN (e.g. "spiffe://bank.example/ns/payouts/sa/payout-worker"), else
// its subject common name.
func IdentityFromCertificate(cert *x509.Certificate) (string, error) {
	id := ""
	switch {
	case len(cert.URIs) > 0:
		id = cert.URIs[0].String()
	case cert.Subject.CommonName != "":
		id = cert.Subject.CommonName
	default:
		return "", errors.New("the client certificate has neither a URI SAN nor a common name")
	}
	if !usableIdentity(id) {
		return "", errors.New("the client certificate's identity is not printable text of at most 1024 bytes")
	}
	return id, nil
}

// usableIdentity: non-empty printable UTF-8 of bounded length, so that it
// can go into a log line and metadata as it is.
func usableIdentity(id string) bool {
	if id == "" || len(id) > maxIdentityBytes || !utf8.ValidString(id) {
		return false
	}
	for _, r := range id {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
