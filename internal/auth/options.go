package auth

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/upvest-gateway/gateway/internal/reloadfile"
)

// An Option configures a Guard in NewGuard.
type Option interface{ applyGuard(*guardOptions) }

// A JWKSOption configures a JWKS in JWKSFromFile or JWKSFromURL.
type JWKSOption interface{ applyJWKS(*jwksOptions) }

// A JWTOption configures a JWTVerifier in NewJWTVerifier.
type JWTOption interface{ applyJWT(*jwtOptions) }

// A PolicyFileOption configures a PolicyFile in LoadPolicyFile.
type PolicyFileOption interface{ applyPolicyFile(*policyFileOptions) }

type guardOptionFunc func(*guardOptions)

func (f guardOptionFunc) applyGuard(o *guardOptions) { f(o) }

type jwksOptionFunc func(*jwksOptions)

func (f jwksOptionFunc) applyJWKS(o *jwksOptions) { f(o) }

type jwtOptionFunc func(*jwtOptions)

func (f jwtOptionFunc) applyJWT(o *jwtOptions) { f(o) }

type guardOptions struct {
	logger     *slog.Logger
	jwt        *JWTVerifier
	policy     *Policy
	policyFile *PolicyFile
	anonymous  bool
	public     []string
}

type jwksOptions struct {
	logger        *slog.Logger
	checkInterval time.Duration
	client        *http.Client
	maxAge        time.Duration
	minInterval   time.Duration
	fetchTimeout  time.Duration
	now           func() time.Time
}

type jwtOptions struct {
	claim     string
	leeway    time.Duration
	now       func() time.Time
	cacheSize int
}

type policyFileOptions struct {
	logger        *slog.Logger
	checkInterval time.Duration
}

func newJWKSOptions(opts []JWKSOption) jwksOptions {
	o := jwksOptions{
		logger:        slog.Default(),
		checkInterval: reloadfile.DefaultCheckInterval,
		maxAge:        DefaultJWKSMaxAge,
		minInterval:   DefaultJWKSMinInterval,
		fetchTimeout:  DefaultJWKSFetchTimeout,
		now:           time.Now,
	}
	for _, opt := range opts {
		if opt != nil {
			opt.applyJWKS(&o)
		}
	}
	return o
}

// SharedOption is an option that several constructors take.
type SharedOption interface {
	Option
	JWKSOption
	PolicyFileOption
}

type loggerOption struct{ l *slog.Logger }

func (o loggerOption) applyGuard(g *guardOptions) {
	if o.l != nil {
		g.logger = o.l
	}
}

func (o loggerOption) applyJWKS(j *jwksOptions) {
	if o.l != nil {
		j.logger = o.l
	}
}

func (o loggerOption) applyPolicyFile(p *policyFileOptions) {
	if o.l != nil {
		p.logger = o.l
	}
}

// WithLogger sets where refusals (Guard) and reloads and failed reloads
// (JWKS, PolicyFile) are reported (default slog.Default()). No token or key
// material is ever logged.
func WithLogger(l *slog.Logger) SharedOption { return loggerOption{l} }

// FileOption is an option for what is read from a file.
type FileOption interface {
	JWKSOption
	PolicyFileOption
}

type checkIntervalOption time.Duration

func (d checkIntervalOption) applyJWKS(o *jwksOptions) {
	if d >= 0 {
		o.checkInterval = time.Duration(d)
	}
}

func (d checkIntervalOption) applyPolicyFile(o *policyFileOptions) {
	if d >= 0 {
		o.checkInterval = time.Duration(d)
	}
}

// WithCheckInterval sets how often, at most, a file is looked at for changes
// (default reloadfile.DefaultCheckInterval); zero looks on every use.
func WithCheckInterval(d time.Duration) FileOption { return checkIntervalOption(d) }

func (o jwksOptions) clientOr(def *http.Client) *http.Client {
	if o.client != nil {
		return o.client
	}
	return def
}

// WithHTTPClient sets the client a JWKS URL is fetched with, e.g. one that
// trusts a private CA (default: one that follows up to three redirects,
// none from https to http).
func WithHTTPClient(c *http.Client) JWKSOption {
	return jwksOptionFunc(func(o *jwksOptions) {
		if c != nil {
			o.client = c
		}
	})
}

// WithJWKSMaxAge sets how old fetched keys may get before they are fetched
// again (default DefaultJWKSMaxAge).
func WithJWKSMaxAge(d time.Duration) JWKSOption {
	return jwksOptionFunc(func(o *jwksOptions) {
		if d > 0 {
			o.maxAge = d
		}
	})
}

// WithJWKSMinInterval sets the least time between two fetches (default
// DefaultJWKSMinInterval), which bounds what tokens naming unknown keys can
// cost.
func WithJWKSMinInterval(d time.Duration) JWKSOption {
	return jwksOptionFunc(func(o *jwksOptions) {
		if d >= 0 {
			o.minInterval = d
		}
	})
}

// WithIdentityClaim sets the claim a token's identity is taken from
// (default DefaultIdentityClaim, "sub"). Its value must be a string.
func WithIdentityClaim(name string) JWTOption {
	return jwtOptionFunc(func(o *jwtOptions) {
		if name != "" {
			o.claim = name
		}
	})
}

// WithLeeway sets the clock skew allowed on exp, nbf and iat (default
// DefaultLeeway).
func WithLeeway(d time.Duration) JWTOption {
	return jwtOptionFunc(func(o *jwtOptions) {
		if d >= 0 {
			o.leeway = d
		}
	})
}

// WithTokenCache sets how many verified tokens a JWTVerifier remembers
// (default DefaultTokenCacheSize); 0 verifies every token on every call.
func WithTokenCache(size int) JWTOption {
	return jwtOptionFunc(func(o *jwtOptions) {
		if size >= 0 {
			o.cacheSize = size
		}
	})
}

// WithJWT authenticates callers by bearer token too. A call that carries an
// authorization metadata value is judged by its token alone, even if it also
// has a client certificate.
func WithJWT(v *JWTVerifier) Option {
	return guardOptionFunc(func(o *guardOptions) { o.jwt = v })
}

// WithPolicy grants what p grants, unchanging.
func WithPolicy(p *Policy) Option {
	return guardOptionFunc(func(o *guardOptions) { o.policy = p })
}

// WithPolicyFile grants what the policy file grants, as it is reloaded.
func WithPolicyFile(f *PolicyFile) Option {
	return guardOptionFunc(func(o *guardOptions) { o.policyFile = f })
}

// WithUnauthenticated makes every caller AnonymousIdentity, whatever
// credentials it carries. With a policy, AnonymousIdentity must be granted
// what callers may do; without one, everything is allowed, without limits.
// For development on loopback only: when to allow it is the caller's
// decision.
func WithUnauthenticated() Option {
	return guardOptionFunc(func(o *guardOptions) { o.anonymous = true })
}

// WithPublicMethods lets anyone call these full method names (e.g.
// "/grpc.health.v1.Health/Check"), without credentials or limits.
func WithPublicMethods(fullMethods ...string) Option {
	return guardOptionFunc(func(o *guardOptions) { o.public = append(o.public, fullMethods...) })
}
