package auth

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/upvest-gateway/gateway/internal/reloadfile"
)

// Defaults of a JWKS fetched from a URL.
const (
	// DefaultJWKSMaxAge: keys older than this are fetched again on use,
	// while the old ones keep verifying until the new ones arrive.
	DefaultJWKSMaxAge = 10 * time.Minute
	// DefaultJWKSMinInterval spaces fetches, whatever asks for them: a
	// token naming an unknown key (a rotation, or a forgery) costs at most
	// one fetch per interval.
	DefaultJWKSMinInterval = 30 * time.Second
	// DefaultJWKSFetchTimeout bounds one fetch.
	DefaultJWKSFetchTimeout = 10 * time.Second
)

// maxJWKSBytes caps a fetched key set; real ones are a few kilobytes.
const maxJWKSBytes = 1 << 20

// minRSABits is the smallest RSA key accepted.
const minRSABits = 2048

var (
	errUnknownKey      = errors.New("the bearer token is signed by a key the gateway does not know")
	errKeysUnavailable = errors.New("the keys that verify bearer tokens cannot be had right now")
)

// JWKS is the set of public keys bearer tokens are verified with, from a
// file (re-read when it changes) or a URL (cached, fetched again when old or
// when a token names a key it lacks, at most once per minimum interval). It
// is safe for concurrent use.
type JWKS struct {
	file *reloadfile.Value[*keySet]

	url          string // redacted of any password, for logs
	fetchURL     string
	client       *http.Client
	maxAge       time.Duration
	minInterval  time.Duration
	fetchTimeout time.Duration
	log          *slog.Logger
	now          func() time.Time

	mu          sync.Mutex
	keys        *keySet
	fetchedAt   time.Time
	lastAttempt time.Time
	lastErr     error
	inflight    chan struct{} // closed when the running fetch ends
}

// keySet is a parsed JWKS: usable signature keys by kid.
type keySet struct {
	byKID map[string]*jose.JSONWebKey
	only  *jose.JSONWebKey // the one key of a one-key set, for tokens without kid
}

// JWKSFromFile reads a JWKS from path now (an error is returned) and again
// whenever the file changes, at most once per check interval; a new content
// that does not parse keeps the previous keys and is logged.
func JWKSFromFile(path string, opts ...JWKSOption) (*JWKS, error) {
	o := newJWKSOptions(opts)
	k := &JWKS{log: o.logger, now: time.Now}
	var err error
	k.file, err = reloadfile.New(func(c [][]byte) (*keySet, error) { return parseJWKS(c[0]) }, []string{path},
		reloadfile.WithCheckInterval(o.checkInterval),
		reloadfile.WithErrorReport(func(err error) {
			k.log.Error("auth: the new JWKS file does not load; still using the previous keys", "jwks_file", path, "err", err)
		}),
		reloadfile.WithReloadReport(func() { k.log.Info("auth: JWKS file reloaded", "jwks_file", path) }),
	)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS file %s: %w", path, err)
	}
	return k, nil
}

// JWKSFromURL fetches the JWKS from rawURL on first use, not now; call
// Refresh at start-up to fail early. The URL must be https, or http on a
// loopback address.
func JWKSFromURL(rawURL string, opts ...JWKSOption) (*JWKS, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("auth: the JWKS URL does not parse")
	}
	switch {
	case u.Scheme == "https" && u.Host != "":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	default:
		return nil, fmt.Errorf("auth: the JWKS URL %s must be https (http only on a loopback address)", u.Redacted())
	}
	o := newJWKSOptions(opts)
	return &JWKS{
		url:          u.Redacted(),
		fetchURL:     rawURL,
		client:       o.clientOr(defaultJWKSClient),
		maxAge:       o.maxAge,
		minInterval:  o.minInterval,
		fetchTimeout: o.fetchTimeout,
		log:          o.logger,
		now:          o.now,
	}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Refresh reads the file or fetches the URL now, e.g. at start-up so that
// a wrong setting stops it with a clear error.
func (k *JWKS) Refresh(ctx context.Context) error {
	if k.file != nil {
		_, err := k.file.Reload()
		return err
	}
	k.mu.Lock()
	ch := k.startFetchLocked()
	k.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return ctx.Err()
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lastErr
}

// key returns the key named kid ("" for a token without one, which only a
// one-key set can verify).
func (k *JWKS) key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	if k.file != nil {
		return k.file.Get().find(kid)
	}
	now := k.now()
	k.mu.Lock()
	set, age, sinceAttempt := k.keys, now.Sub(k.fetchedAt), now.Sub(k.lastAttempt)
	var key *jose.JSONWebKey
	var err error = errKeysUnavailable
	if set != nil {
		key, err = set.find(kid)
	}
	switch {
	case err == nil && age < k.maxAge:
		k.mu.Unlock()
		return key, nil
	case err == nil:
		// Old keys still verify; fetch newer ones for later calls.
		if sinceAttempt >= k.minInterval {
			k.startFetchLocked()
		}
		k.mu.Unlock()
		return key, nil
	}
	// No key for kid: wait for the fetch running, or start one unless it is
	// too soon to ask again.
	ch := k.inflight
	if ch == nil {
		if sinceAttempt < k.minInterval {
			k.mu.Unlock()
			return nil, err
		}
		ch = k.startFetchLocked()
	}
	k.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return nil, errKeysUnavailable
	}
	k.mu.Lock()
	set = k.keys
	k.mu.Unlock()
	if set == nil {
		return nil, errKeysUnavailable
	}
	return set.find(kid)
}

// startFetchLocked starts a fetch unless one is running, and returns the
// channel closed when it ends. The fetch is not tied to any one caller's
// context: a caller that gives up must not fail it for the others.
func (k *JWKS) startFetchLocked() chan struct{} {
	if k.inflight != nil {
		return k.inflight
	}
	ch := make(chan struct{})
	k.inflight = ch
	k.lastAttempt = k.now()
	go func() {
		set, err := k.fetch()
		k.mu.Lock()
		k.lastErr = err
		if err == nil {
			k.keys, k.fetchedAt = set, k.now()
		}
		k.inflight = nil
		k.mu.Unlock()
		close(ch)
		if err != nil {
			k.log.Error("auth: fetching the JWKS failed; keeping the keys already known", "jwks_url", k.url, "err", err)
		}
	}()
	return ch
}

func (k *JWKS) fetch() (*keySet, error) {
	ctx, cancel := context.WithTimeout(context.Background(), k.fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.fetchURL, nil)
	if err != nil {
		return nil, fmt.Errorf("JWKS request: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		// A *url.Error quotes the URL as given, password and all.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("GET %s: %w", k.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", k.url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading the body: %w", k.url, err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("GET %s: the key set is larger than %d bytes", k.url, maxJWKSBytes)
	}
	return parseJWKS(body)
}

func (s *keySet) find(kid string) (*jose.JSONWebKey, error) {
	if kid == "" {
		if s.only != nil {
			return s.only, nil
		}
		return nil, errUnknownKey
	}
	if key, ok := s.byKID[kid]; ok {
		return key, nil
	}
	return nil, errUnknownKey
}

// privateMembers are JWK members that only private or symmetric keys have.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "k", "priv"}

// parseJWKS keeps the public signature keys (RSA of at least 2048 bits, EC,
// Ed25519) of a JWKS. Keys of other types or for encryption are skipped, so
// an identity provider adding one breaks nothing. A private or symmetric
// key, a malformed key, a duplicate kid, or no usable key at all fails the
// set. Errors name keys by position, never by content.
func parseJWKS(data []byte) (*keySet, error) {
	var raw struct {
		Keys *[]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, errors.New("the JWKS is not a JSON object")
	}
	if raw.Keys == nil {
		return nil, errors.New(`the JWKS has no "keys" member`)
	}
	set := &keySet{byKID: map[string]*jose.JSONWebKey{}}
	n := 0
	for i, rk := range *raw.Keys {
		var members map[string]json.RawMessage
		if err := json.Unmarshal(rk, &members); err != nil {
			return nil, fmt.Errorf("JWKS key %d is not a JSON object", i)
		}
		var kty, use string
		_ = json.Unmarshal(members["kty"], &kty)
		_ = json.Unmarshal(members["use"], &use)
		for _, m := range privateMembers {
			if _, ok := members[m]; ok {
				return nil, fmt.Errorf("JWKS key %d is a private or symmetric key: publish public keys only", i)
			}
		}
		if (kty != "RSA" && kty != "EC" && kty != "OKP") || (use != "" && use != "sig") {
			continue
		}
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(rk); err != nil || key.Key == nil || !key.Valid() || !key.IsPublic() {
			if kty == "OKP" && err == nil && key.Key == nil {
				continue // an OKP curve other than Ed25519
			}
			return nil, fmt.Errorf("JWKS key %d (%s) is malformed", i, kty)
		}
		if rsaKey, ok := key.Key.(*rsa.PublicKey); ok && rsaKey.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("JWKS key %d is RSA of %d bits; at least %d are required", i, rsaKey.N.BitLen(), minRSABits)
		}
		if key.Algorithm != "" && !allowedAlgorithm(key.Algorithm) {
			continue // e.g. an RSA key meant for RSA1_5 or HS256
		}
		if _, dup := set.byKID[key.KeyID]; dup {
			return nil, fmt.Errorf("JWKS key %d repeats the kid of an earlier key", i)
		}
		set.byKID[key.KeyID] = &key
		n++
	}
	if n == 0 {
		return nil, errors.New("the JWKS has no usable signature key (RSA, EC or Ed25519)")
	}
	if n == 1 {
		for _, k := range set.byKID {
			set.only = k
		}
	}
	return set, nil
}

// defaultJWKSClient follows a few redirects, never to plain http off
// loopback.
var defaultJWKSClient = &http.Client{
	CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 3 {
			return errors.New("too many redirects")
		}
		if req.URL.Scheme != "https" && !isLoopback(req.URL.Hostname()) {
			return errors.New("redirected away from https")
		}
		return nil
	},
}
