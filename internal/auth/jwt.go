package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// DefaultLeeway is the clock skew allowed on exp, nbf and iat.
const DefaultLeeway = 30 * time.Second

// DefaultIdentityClaim is the claim a token's identity is taken from.
const DefaultIdentityClaim = "sub"

// MaxTokenBytes bounds a bearer token; real ones are a few hundred bytes to
// a few kilobytes.
const MaxTokenBytes = 8 << 10

// algorithms are the signature algorithms accepted: asymmetric only. "none"
// and the HMAC family are absent, so a token signed with a public key as an
// HMAC secret, or not at all, never verifies.
var algorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

func allowedAlgorithm(alg string) bool {
	for _, a := range algorithms {
		if string(a) == alg {
			return true
		}
	}
	return false
}

// Why a token was refused. The messages are fixed text: nothing of the
// token ever reaches an error, a status or a log line.
var (
	errNoBearer          = errors.New("the authorization metadata is not a bearer token")
	errTokenTooLarge     = errors.New("the bearer token is too large")
	errTokenMalformed    = errors.New("the bearer token is not a signed JWT with an accepted algorithm")
	errTokenSignature    = errors.New("the bearer token's signature does not verify")
	errTokenClaims       = errors.New("the bearer token's claims are malformed")
	errTokenNoExpiry     = errors.New("the bearer token has no expiry (exp)")
	errTokenExpired      = errors.New("the bearer token has expired")
	errTokenNotYetValid  = errors.New("the bearer token is not valid yet")
	errTokenIssuer       = errors.New("the bearer token is from another issuer")
	errTokenAudience     = errors.New("the bearer token is for another audience")
	errTokenIdentity     = errors.New("the bearer token's identity claim is missing or not printable text")
	errTokenKeyAlgorithm = errors.New("the bearer token's algorithm does not match its key")
)

// ParseBearer returns the token of an authorization value "Bearer <token>"
// (the scheme in any case, RFC 7235).
func ParseBearer(authorization string) (string, error) {
	scheme, token, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", errNoBearer
	}
	token = strings.TrimLeft(token, " ")
	if token == "" {
		return "", errNoBearer
	}
	if len(token) > MaxTokenBytes {
		return "", errTokenTooLarge
	}
	return token, nil
}

// JWTVerifier verifies bearer tokens: a JWT signed by a key of the JWKS
// with an accepted algorithm (RS*, PS*, ES256/384/512, EdDSA), issued by the
// expected issuer for the expected audience, with an expiry, within its
// validity (with a leeway for clock skew). A token that verified is
// remembered until it expires or its key leaves the key set (see
// WithTokenCache). Safe for concurrent use.
type JWTVerifier struct {
	keys     *JWKS
	issuer   string
	audience string
	claim    string
	leeway   time.Duration
	now      func() time.Time
	verified *verifiedTokens // nil: every token is verified on every call
}

// NewJWTVerifier verifies tokens with keys for issuer and audience (both
// required).
func NewJWTVerifier(keys *JWKS, issuer, audience string, opts ...JWTOption) (*JWTVerifier, error) {
	switch {
	case keys == nil:
		return nil, errors.New("auth: a JWT verifier needs a JWKS")
	case issuer == "":
		return nil, errors.New("auth: a JWT verifier needs the expected issuer")
	case audience == "":
		return nil, errors.New("auth: a JWT verifier needs the expected audience")
	}
	o := jwtOptions{claim: DefaultIdentityClaim, leeway: DefaultLeeway, now: time.Now, cacheSize: DefaultTokenCacheSize}
	for _, opt := range opts {
		if opt != nil {
			opt.applyJWT(&o)
		}
	}
	if o.claim == "" {
		return nil, errors.New("auth: the identity claim name is empty")
	}
	return &JWTVerifier{keys: keys, issuer: issuer, audience: audience, claim: o.claim, leeway: o.leeway, now: o.now,
		verified: newVerifiedTokens(o.cacheSize)}, nil
}

// Verify checks token and returns the identity it carries. Its errors are
// fixed text: they never quote the token.
func (v *JWTVerifier) Verify(ctx context.Context, token string) (string, error) {
	if len(token) > MaxTokenBytes {
		return "", errTokenTooLarge
	}
	digest := tokenDigest(token)
	if e, ok := v.verified.get(digest, v.now()); ok {
		// Still the key its kid names now: a rotation ends the entry.
		if key, err := v.keys.key(ctx, e.kid); err == nil && key == e.key {
			return e.identity, nil
		}
	}
	e, err := v.verify(ctx, token)
	if err != nil {
		return "", err
	}
	v.verified.put(digest, e, v.now())
	return e.identity, nil
}

// verify checks token's signature and claims.
func (v *JWTVerifier) verify(ctx context.Context, token string) (verifiedToken, error) {
	jws, err := jose.ParseSignedCompact(token, algorithms)
	if err != nil || len(jws.Signatures) != 1 {
		return verifiedToken{}, errTokenMalformed
	}
	h := jws.Signatures[0].Header
	key, err := v.keys.key(ctx, h.KeyID)
	if err != nil {
		return verifiedToken{}, err
	}
	if key.Algorithm != "" && key.Algorithm != h.Algorithm {
		return verifiedToken{}, errTokenKeyAlgorithm
	}
	payload, err := jws.Verify(key.Key)
	if err != nil {
		return verifiedToken{}, errTokenSignature
	}
	// Decoded only once verified: nothing unsigned is ever looked at.
	var std jwt.Claims
	var all map[string]any
	if json.Unmarshal(payload, &std) != nil || json.Unmarshal(payload, &all) != nil {
		return verifiedToken{}, errTokenClaims
	}
	if std.Expiry == nil {
		return verifiedToken{}, errTokenNoExpiry
	}
	err = std.ValidateWithLeeway(jwt.Expected{Issuer: v.issuer, AnyAudience: jwt.Audience{v.audience}, Time: v.now()}, v.leeway)
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrExpired):
		return verifiedToken{}, errTokenExpired
	case errors.Is(err, jwt.ErrNotValidYet), errors.Is(err, jwt.ErrIssuedInTheFuture):
		return verifiedToken{}, errTokenNotYetValid
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return verifiedToken{}, errTokenIssuer
	case errors.Is(err, jwt.ErrInvalidAudience):
		return verifiedToken{}, errTokenAudience
	default:
		return verifiedToken{}, errTokenClaims
	}
	id, ok := all[v.claim].(string)
	if !ok || !usableIdentity(id) {
		return verifiedToken{}, errTokenIdentity
	}
	return verifiedToken{identity: id, kid: h.KeyID, key: key, expires: std.Expiry.Time().Add(v.leeway)}, nil
}

// String describes the verifier for start-up logs.
func (v *JWTVerifier) String() string {
	return fmt.Sprintf("JWT issuer %q, audience %q, identity claim %q", v.issuer, v.audience, v.claim)
}
