package auth

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// authorizationMetadata is where gRPC callers, and grpc-gateway for REST
// callers, put "Bearer <token>".
const authorizationMetadata = "authorization"

// inMemoryNetwork is the network of the REST face's connection to the gRPC
// server (google.golang.org/grpc/test/bufconn): only that peer may forward
// an identity.
const inMemoryNetwork = "bufconn"

func fromREST(ctx context.Context) bool {
	p, ok := peer.FromContext(ctx)
	return ok && p.Addr != nil && p.Addr.Network() == inMemoryNetwork
}

// authenticate establishes the caller of a gRPC call.
func (g *Guard) authenticate(ctx context.Context) (Caller, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	rest := fromREST(ctx)
	forwarded := md.Get(RESTCallerMetadata)
	switch {
	case !rest && len(forwarded) > 0:
		return Caller{}, unauthenticated("the call carries metadata reserved for the gateway's REST face")
	case len(forwarded) > 1:
		// The annotator sets it once per call; a second value was injected
		// through a header the REST face should have dropped.
		return Caller{}, unauthenticated("the call carries metadata reserved for the gateway's REST face")
	}
	if g.anonymous {
		return Caller{Identity: AnonymousIdentity, Source: SourceAnonymous, REST: rest}, nil
	}
	if auth := md.Get(authorizationMetadata); g.jwt != nil && len(auth) > 0 {
		if len(auth) > 1 {
			return Caller{}, unauthenticated("the call carries more than one authorization value")
		}
		id, err := g.verifyBearer(ctx, auth[0])
		if err != nil {
			return Caller{}, err
		}
		return Caller{Identity: id, Source: SourceBearerToken, REST: rest}, nil
	}
	if rest {
		if len(forwarded) == 1 && forwarded[0] != "" {
			return Caller{Identity: forwarded[0], Source: SourceClientCertificate, REST: true}, nil
		}
	} else if id, ok, err := peerCertificateIdentity(ctx); ok || err != nil {
		if err != nil {
			return Caller{}, unauthenticated(err.Error())
		}
		return Caller{Identity: id, Source: SourceClientCertificate}, nil
	}
	return Caller{}, unauthenticated(g.noCredentials)
}

// verifyBearer turns an authorization value into an identity, or a status
// that says why not without quoting it.
func (g *Guard) verifyBearer(ctx context.Context, authorization string) (string, error) {
	token, err := ParseBearer(authorization)
	if err == nil {
		var id string
		if id, err = g.jwt.Verify(ctx, token); err == nil {
			return id, nil
		}
	}
	if errors.Is(err, errKeysUnavailable) {
		return "", refusal(codes.Unavailable, ReasonKeysUnavailable, err.Error(), nil)
	}
	return "", unauthenticated(err.Error())
}

// peerCertificateIdentity is the identity of the client certificate that the
// TLS handshake verified; ok is false when there is none.
func peerCertificateIdentity(ctx context.Context) (id string, ok bool, err error) {
	p, found := peer.FromContext(ctx)
	if !found {
		return "", false, nil
	}
	info, isTLS := p.AuthInfo.(credentials.TLSInfo)
	if !isTLS || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return "", false, nil
	}
	id, err = IdentityFromCertificate(info.State.VerifiedChains[0][0])
	return id, true, err
}
