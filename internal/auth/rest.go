package auth

import (
	"context"
	"net/http"
	"strings"

	"google.golang.org/grpc/metadata"
)

// RESTCallerMetadata is the metadata key under which the REST face forwards
// the identity of the client certificate its HTTP listener verified (see
// Guard.RESTMetadata). The interceptors believe it only from the in-memory
// connection the REST face dials (peer network "bufconn"); on any other
// connection, a call carrying it is refused.
//
// A REST client must never be able to set it: grpc-gateway turns a header
// "Grpc-Metadata-Upvest-Gateway-Rest-Caller-Bin" into this key, so the REST
// face's incoming header matcher must drop that header (RESTHeaderMatcher
// does). As a second line, the annotator always sets the key, so an injected
// value shows as a second one and the call is refused.
const RESTCallerMetadata = "upvest-gateway-rest-caller-bin"

// RESTHeaderMatcher wraps the REST face's incoming header matcher (e.g.
// runtime.DefaultHeaderMatcher) so that no HTTP header can become
// RESTCallerMetadata, whatever next maps it to. Use it as
// runtime.WithIncomingHeaderMatcher(auth.RESTHeaderMatcher(next)).
func RESTHeaderMatcher(next func(string) (string, bool)) func(string) (string, bool) {
	return func(header string) (string, bool) {
		if next == nil {
			return "", false
		}
		key, ok := next(header)
		if !ok || strings.EqualFold(key, RESTCallerMetadata) {
			return "", false
		}
		return key, true
	}
}

// RESTMetadata is the REST face's metadata annotator
// (runtime.WithMetadata(g.RESTMetadata)): it forwards the identity of the
// client certificate the HTTP listener verified, or an empty value when
// there is none. A bearer token needs no forwarding: grpc-gateway passes the
// Authorization header on as "authorization" metadata, and the interceptors
// verify it as for any gRPC call.
func (g *Guard) RESTMetadata(_ context.Context, r *http.Request) metadata.MD {
	id := ""
	if !g.anonymous && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		if certID, err := IdentityFromCertificate(r.TLS.VerifiedChains[0][0]); err == nil {
			id = certID
		}
		// An unusable certificate identity forwards nothing: the call is
		// then refused as unauthenticated, unless it has a bearer token.
	}
	return metadata.Pairs(RESTCallerMetadata, id)
}

// AuthenticateHTTP authenticates an HTTP request the same way as a gRPC
// call: its bearer token (with WithJWT), else the client certificate the
// listener verified (r.TLS), else AnonymousIdentity with
// WithUnauthenticated. It is for HTTP routes outside the REST face; the
// REST face itself is authenticated by the interceptors. The error is a
// gRPC status (UNAUTHENTICATED, or UNAVAILABLE when no keys can be had).
func (g *Guard) AuthenticateHTTP(r *http.Request) (Caller, error) {
	if g.anonymous {
		return Caller{Identity: AnonymousIdentity, Source: SourceAnonymous}, nil
	}
	if auth := r.Header.Values("Authorization"); g.jwt != nil && len(auth) > 0 {
		if len(auth) > 1 {
			return Caller{}, unauthenticated("the request carries more than one Authorization header")
		}
		id, err := g.verifyBearer(r.Context(), auth[0])
		if err != nil {
			return Caller{}, err
		}
		return Caller{Identity: id, Source: SourceBearerToken}, nil
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		id, err := IdentityFromCertificate(r.TLS.VerifiedChains[0][0])
		if err != nil {
			return Caller{}, unauthenticated(err.Error())
		}
		return Caller{Identity: id, Source: SourceClientCertificate}, nil
	}
	return Caller{}, unauthenticated(strings.Replace(g.noCredentials, "call", "request", 1))
}
