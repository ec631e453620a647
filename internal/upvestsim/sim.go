package upvestsim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
)

// Config configures a Sim. ClientID, ClientSecret and TenantKeys are
// required; every other field has a default.
type Config struct {
	ClientID, ClientSecret string
	// TenantKeys maps each signing key id to the public key the tenant signs
	// with (ECDSA P-256/384/521 or Ed25519).
	TenantKeys map[string]crypto.PublicKey
	// WebhookURL, when set, is a pre-registered, enabled subscription for all
	// event categories, so a test needs no webhook set-up calls.
	WebhookURL string
	TokenTTL   time.Duration // default 1799s, as the sandbox answers
	// Step moves every resource one status forward each period; 0 leaves
	// transitions to Advance, which keeps tests deterministic.
	Step      time.Duration
	Latency   time.Duration // added to every API request
	FaultRate float64       // 0..1: chance of a random fault per API request
	// FaultSeed seeds the random faults and the ids for a repeatable run;
	// 0 picks fresh randomness.
	FaultSeed int64
	Logger    *slog.Logger     // request verdicts and deliveries; default discards
	Now       func() time.Time // default time.Now

	// WebhookBackoffUnit scales the delivery retry schedule 1, 2, 3, 5, 8 …
	// 600 units (default 1s, as upstream); tests use milliseconds.
	WebhookBackoffUnit time.Duration
	// WebhookBatchSize caps the events in one delivery (default 10), on top
	// of the subscription's max_package_size in bytes.
	WebhookBatchSize int
	// WebhookClient sends the deliveries (default: a client with a 10s
	// timeout).
	WebhookClient *http.Client
	// EnableNewWebhooks makes POST /webhooks create enabled subscriptions.
	// By default they start disabled, as upstream may do, so a client must
	// enable them with PATCH.
	EnableNewWebhooks bool

	// For load tests, where the simulator must cost little beside the
	// client under test:
	//
	// VerifyOneIn checks the signature of one API request in n, the first
	// one included (0 or 1: every request). The others must still carry
	// signature headers that name a registered key, with version 15; the
	// token, scopes and everything else are checked as usual. A P-521
	// check costs more CPU than a gateway spends on a whole call.
	VerifyOneIn int
	// VerifyKeys are published at /auth/verify_keys beside the simulator's
	// own webhook key, so that a load generator may sign deliveries of its
	// own making (with a key cheaper to check than Upvest's P-521).
	VerifyKeys map[string]crypto.PublicKey
	// MaxRecords bounds the request and the delivery records kept for
	// Requests and Deliveries, dropping the oldest (0: keep all).
	MaxRecords int
}

const (
	defaultTokenTTL       = 1799 * time.Second
	defaultBackoffUnit    = time.Second
	defaultBatchSize      = 10
	defaultWebhookTimeout = 10 * time.Second
)

// Sim is the simulated Upvest Investment API. It is an http.Handler and safe
// for concurrent use.
type Sim struct {
	cfg        Config
	log        *slog.Logger
	tenantKeys httpsig.KeyResolver
	ids        *idSource
	faults     *faultState
	records    recordLog
	// signed counts the API requests that reached the signature check,
	// for Config.VerifyOneIn.
	signed atomic.Uint64

	webhookKID    string
	webhookKey    *ecdsa.PrivateKey
	webhookSigner *httpsig.Signer
	jwks          []byte // GET /auth/verify_keys body

	done      chan struct{} // closed by Close
	closeOnce sync.Once
	wg        sync.WaitGroup // step loop and delivery workers

	mu            sync.Mutex // guards everything below
	tokens        map[string]*accessToken
	tokenRequests int
	idem          map[string]*idemEntry
	effects       map[string]int
	virtualCash   store[*virtualCash]
	topups        store[*topup]
	directDebits  store[*directDebit]
	withdrawals   store[*withdrawal]
	active        []stepper // resources not yet in a final status, creation order
	balances      map[balanceKey]*balance
	events        []Event
	lastEventAt   time.Time
	subs          []*subscription
	paused        bool
}

// New checks cfg, generates the webhook signing key, registers the
// Config.WebhookURL subscription and starts the step loop.
func New(cfg Config) (*Sim, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	s := &Sim{
		cfg:        cfg,
		log:        cfg.Logger,
		tenantKeys: httpsig.StaticKeys(cfg.TenantKeys),
		ids:        newIDSource(cfg.FaultSeed),
		faults:     newFaultState(cfg.FaultRate, cfg.FaultSeed),
		done:       make(chan struct{}),
		tokens:     map[string]*accessToken{},
		idem:       map[string]*idemEntry{},
		effects:    map[string]int{},
		balances:   map[balanceKey]*balance{},
	}
	if err := s.initWebhookKey(); err != nil {
		return nil, err
	}
	if cfg.WebhookURL != "" {
		s.mu.Lock()
		s.addSubscription(webhookJSON{
			Title:   preregisteredTitle,
			URL:     cfg.WebhookURL,
			Enabled: true,
			Type:    []string{categoryAll},
			Config:  defaultWebhookConfig(),
		})
		s.mu.Unlock()
	}
	if cfg.Step > 0 {
		s.wg.Add(1)
		go s.stepLoop(cfg.Step)
	}
	return s, nil
}

func (cfg *Config) check() error {
	switch {
	case cfg.ClientID == "":
		return errors.New("upvestsim: Config.ClientID is required")
	case cfg.ClientSecret == "":
		return errors.New("upvestsim: Config.ClientSecret is required")
	case len(cfg.TenantKeys) == 0:
		return errors.New("upvestsim: Config.TenantKeys needs at least one key")
	case cfg.FaultRate < 0 || cfg.FaultRate > 1:
		return fmt.Errorf("upvestsim: Config.FaultRate %v is outside 0..1", cfg.FaultRate)
	case cfg.TokenTTL < 0, cfg.Step < 0, cfg.Latency < 0, cfg.WebhookBackoffUnit < 0, cfg.WebhookBatchSize < 0,
		cfg.VerifyOneIn < 0, cfg.MaxRecords < 0:
		return errors.New("upvestsim: Config durations and sizes must not be negative")
	}
	for id, k := range cfg.TenantKeys {
		if !supportedKey(k) {
			return fmt.Errorf("upvestsim: tenant key %q: want an ECDSA P-256/P-384/P-521 or Ed25519 public key, got %T", id, k)
		}
	}
	for id, k := range cfg.VerifyKeys {
		if !supportedKey(k) {
			return fmt.Errorf("upvestsim: verify key %q: want an ECDSA P-256/P-384/P-521 or Ed25519 public key, got %T", id, k)
		}
	}
	if cfg.WebhookURL != "" {
		if err := checkWebhookURL(cfg.WebhookURL); err != nil {
			return fmt.Errorf("upvestsim: Config.WebhookURL: %w", err)
		}
	}
	return nil
}

func (cfg *Config) setDefaults() {
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = defaultTokenTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.WebhookBackoffUnit == 0 {
		cfg.WebhookBackoffUnit = defaultBackoffUnit
	}
	if cfg.WebhookBatchSize == 0 {
		cfg.WebhookBatchSize = defaultBatchSize
	}
	if cfg.WebhookClient == nil {
		cfg.WebhookClient = &http.Client{Timeout: defaultWebhookTimeout}
	}
}

func supportedKey(k crypto.PublicKey) bool {
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		return k != nil && (k.Curve == elliptic.P256() || k.Curve == elliptic.P384() || k.Curve == elliptic.P521())
	case ed25519.PublicKey:
		return len(k) == ed25519.PublicKeySize
	}
	return false
}

func checkWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	return nil
}

// preregisteredTitle is the title of the Config.WebhookURL subscription.
const preregisteredTitle = "upvestsim"

// initWebhookKey makes the P-521 key deliveries are signed with, as Upvest
// documents, and renders the JWKS clients fetch to verify them.
func (s *Sim) initWebhookKey() error {
	key, err := ecdsa.GenerateKey(elliptic.P521(), crand.Reader)
	if err != nil {
		return fmt.Errorf("upvestsim: webhook key: %w", err)
	}
	s.webhookKID, s.webhookKey = s.ids.uuid(), key
	// Signed on the simulator's clock: a simulator running behind signs
	// deliveries that arrive with old signatures.
	if s.webhookSigner, err = httpsig.NewSigner(key, s.webhookKID, httpsig.WithVersion(6), httpsig.WithClock(s.cfg.Now)); err != nil {
		return fmt.Errorf("upvestsim: webhook signer: %w", err)
	}
	jwk, err := httpsig.NewJWK(s.webhookKID, &key.PublicKey)
	if err != nil {
		return fmt.Errorf("upvestsim: webhook JWK: %w", err)
	}
	jwks := httpsig.JWKS{Keys: []httpsig.JWK{jwk}}
	for _, kid := range slices.Sorted(maps.Keys(s.cfg.VerifyKeys)) {
		jwk, err := httpsig.NewJWK(kid, s.cfg.VerifyKeys[kid])
		if err != nil {
			return fmt.Errorf("upvestsim: verify key %q: %w", kid, err)
		}
		jwks.Keys = append(jwks.Keys, jwk)
	}
	if s.jwks, err = json.Marshal(jwks); err != nil {
		return fmt.Errorf("upvestsim: webhook JWKS: %w", err)
	}
	return nil
}

// WebhookKeyID is the kid of the key that signs webhook deliveries.
func (s *Sim) WebhookKeyID() string { return s.webhookKID }

// webhookSignerAt signs deliveries as if at t.
func (s *Sim) webhookSignerAt(t time.Time) (*httpsig.Signer, error) {
	return httpsig.NewSigner(s.webhookKey, s.webhookKID, httpsig.WithVersion(6), httpsig.WithClock(func() time.Time { return t }))
}

// WebhookID is the id of the subscription registered for
// Config.WebhookURL, "" when there is none: the id every event delivered
// through it carries as webhook_id.
func (s *Sim) WebhookID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sub := range s.subs {
		if sub.json.Title == preregisteredTitle && sub.json.URL == s.cfg.WebhookURL {
			return sub.json.ID
		}
	}
	return ""
}

// Close stops status transitions and webhook delivery, aborting deliveries
// in progress, and waits for its goroutines. The Sim keeps answering API
// requests.
func (s *Sim) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		s.mu.Lock()
		for _, sub := range s.subs {
			sub.cancel()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
}

// now is the simulator clock in UTC at the microsecond precision timestamps
// are rendered with, so stored and rendered times compare equal.
func (s *Sim) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }
