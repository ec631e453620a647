package webhook

import (
	"context"
	"crypto"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/upvest-gateway/gateway/internal/events"
	"github.com/upvest-gateway/gateway/internal/events/eventstest"
	"github.com/upvest-gateway/gateway/internal/logtest"
	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
	"github.com/upvest-gateway/gateway/internal/upvestsim"
	"github.com/upvest-gateway/gateway/internal/upvestsim/simtest"
)

// flakyLog fails the first n appends, as a log that is briefly unavailable.
type flakyLog struct {
	log   *testLog
	fails atomic.Int32
}

func (f *flakyLog) Append(ctx context.Context, evs []events.Event) error {
	if f.fails.Add(-1) >= 0 {
		return fmt.Errorf("%w: injected", events.ErrUnavailable)
	}
	return f.log.Append(ctx, evs)
}

// simUpvest is a simulator delivering to a receiver, and a tenant client
// of it.
type simUpvest struct {
	sim    *upvestsim.Sim
	client *simtest.Client
}

// keys fetches the webhook keys from the simulator's /auth/verify_keys, as
// the gateway does from Upvest's.
func (u *simUpvest) keys(ctx context.Context) (map[string]crypto.PublicKey, error) {
	resp, err := u.client.FetchToken(ctx, "webhooks:read")
	if err != nil {
		return nil, err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := resp.JSON(&tok); err != nil {
		return nil, err
	}
	resp, err = u.client.Send(ctx, http.MethodGet, "/auth/verify_keys", nil, simtest.Token(tok.AccessToken))
	if err != nil {
		return nil, err
	}
	if resp.Status != http.StatusOK {
		return nil, fmt.Errorf("verify_keys: %d", resp.Status)
	}
	return httpsig.ParseJWKS(resp.Body)
}

// startSimUpvest starts a simulator that delivers to the receiver rc makes
// (given the key source), as adjusted by mutate.
func startSimUpvest(t *testing.T, rc func(keys KeySource) http.Handler, mutate func(*upvestsim.Config)) *simUpvest {
	t.Helper()
	u := &simUpvest{}
	recv := httptest.NewServer(rc(u.keys))
	t.Cleanup(recv.Close)
	tenantKey := simtest.GenerateKey(t, simtest.P521)
	clientID := uuid.NewString()
	cfg := upvestsim.Config{
		ClientID:           clientID,
		ClientSecret:       "secret",
		TenantKeys:         map[string]crypto.PublicKey{"tenant": tenantKey.Public()},
		WebhookURL:         recv.URL + "/webhooks/upvest",
		WebhookBackoffUnit: time.Millisecond,
		WebhookBatchSize:   3,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	sim, err := upvestsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	simSrv := httptest.NewServer(sim)
	t.Cleanup(simSrv.Close)
	u.sim = sim
	// The tenant signs on the simulator's clock, so its calls are fresh to it.
	signer := simtest.NewSigner(t, tenantKey, "tenant", httpsig.WithClock(cfg.Now))
	u.client = &simtest.Client{BaseURL: simSrv.URL, ClientID: clientID, ClientSecret: "secret", Signer: signer}
	return u
}

// createTopups creates n top-ups of ag and lets them settle.
func (u *simUpvest) createTopups(t *testing.T, ag string, n int) {
	t.Helper()
	tok := u.client.MustToken(t, "topups:admin")
	for range n {
		body := []byte(fmt.Sprintf(`{"account_group_id":%q,"cash_amount":"10.00","currency":"EUR"}`, ag))
		resp := u.client.Do(t, http.MethodPost, "/payments/topups", body, simtest.Token(tok), simtest.IdempotencyKey(uuid.NewString()))
		if resp.Status/100 != 2 {
			t.Fatalf("create top-up: %d %s", resp.Status, resp.Body)
		}
	}
	u.sim.Advance()
}

// The simulator's real, signed (v6) deliveries, with keys fetched from its
// /auth/verify_keys, retried by it after 503s: every event it emits reaches a
// subscriber exactly once.
func TestSimulatorDeliveries(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		l := openBackend(t, be)
		flaky := &flakyLog{log: l}
		flaky.fails.Store(2)
		u := startSimUpvest(t, func(keys KeySource) http.Handler {
			return NewReceiver(flaky, l.quarantine, keys, WithLogger(logtest.Logger(t)))
		}, nil)

		ag := uuid.NewString()
		s := startWatch(t, l, events.Filter{AccountGroupID: ag})
		u.createTopups(t, ag, 3)

		simEvents := u.sim.Events()
		if len(simEvents) < 6 {
			t.Fatalf("the simulator emitted %d events", len(simEvents))
		}
		var want []string
		for _, e := range simEvents {
			want = append(want, e.ID)
		}
		got := msgIDs(s.events(t, len(want)))
		s.quiet(t, 300*time.Millisecond)
		slices.Sort(want)
		slices.Sort(got)
		equalIDs(t, got, want)
		if n := flaky.fails.Load(); n >= 0 {
			t.Errorf("the injected failures were not all hit (%d left)", n+1)
		}
	})
}

// A simulator whose clock runs 10 minutes behind signs every delivery 10
// minutes before the receiver sees it, as Upvest re-sending deliveries with
// their original signature after an outage: longer ago than the 5.5 minutes
// once allowed, within the default signature age. Every event arrives, and
// the simulator's subscription, learnt after start-up, binds them.
func TestSimulatorOldSignatures(t *testing.T) {
	l := openBackend(t, eventstest.Backends()[0])
	subs, _ := NewSubscriptions()
	u := startSimUpvest(t, func(keys KeySource) http.Handler {
		return NewReceiver(l, l.quarantine, keys, WithLogger(logtest.Logger(t)), WithSubscriptions(subs))
	}, func(c *upvestsim.Config) {
		c.Now = func() time.Time { return time.Now().Add(-10 * time.Minute) }
	})
	if err := subs.Add(u.sim.WebhookID()); err != nil {
		t.Fatal(err)
	}
	ag := uuid.NewString()
	s := startWatch(t, l, events.Filter{AccountGroupID: ag})
	u.createTopups(t, ag, 2)
	want := len(u.sim.Events())
	s.events(t, want)
	for _, d := range u.sim.Deliveries() {
		if d.Status != http.StatusOK || d.Attempt != 1 {
			t.Errorf("delivery %+v, want each accepted at once", d)
		}
	}
}
