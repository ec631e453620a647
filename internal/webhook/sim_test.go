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

// The simulator's real, signed (v6) deliveries, with keys fetched from its
// /auth/verify_keys, retried by it after 503s: every event it emits reaches a
// subscriber exactly once.
func TestSimulatorDeliveries(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		l := openBackend(t, be)
		flaky := &flakyLog{log: l}
		flaky.fails.Store(2)

		var client *simtest.Client
		keys := func(ctx context.Context) (map[string]crypto.PublicKey, error) {
			resp, err := client.FetchToken(ctx, "webhooks:read")
			if err != nil {
				return nil, err
			}
			var tok struct {
				AccessToken string `json:"access_token"`
			}
			if err := resp.JSON(&tok); err != nil {
				return nil, err
			}
			resp, err = client.Send(ctx, http.MethodGet, "/auth/verify_keys", nil, simtest.Token(tok.AccessToken))
			if err != nil {
				return nil, err
			}
			if resp.Status != http.StatusOK {
				return nil, fmt.Errorf("verify_keys: %d", resp.Status)
			}
			return httpsig.ParseJWKS(resp.Body)
		}
		recv := httptest.NewServer(NewReceiver(flaky, l.quarantine, keys, WithLogger(testLogger(t))))
		t.Cleanup(recv.Close)

		tenantKey := simtest.GenerateKey(t, simtest.P521)
		clientID := uuid.NewString()
		sim, err := upvestsim.New(upvestsim.Config{
			ClientID:           clientID,
			ClientSecret:       "secret",
			TenantKeys:         map[string]crypto.PublicKey{"tenant": tenantKey.Public()},
			WebhookURL:         recv.URL + "/webhooks/upvest",
			WebhookBackoffUnit: time.Millisecond,
			WebhookBatchSize:   3,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sim.Close)
		simSrv := httptest.NewServer(sim)
		t.Cleanup(simSrv.Close)
		client = &simtest.Client{BaseURL: simSrv.URL, ClientID: clientID, ClientSecret: "secret",
			Signer: simtest.NewSigner(t, tenantKey, "tenant")}

		ag := uuid.NewString()
		s := startWatch(t, l, events.Filter{AccountGroupID: ag})
		tok := client.MustToken(t, "topups:admin")
		for i := 0; i < 3; i++ {
			body := []byte(fmt.Sprintf(`{"account_group_id":%q,"cash_amount":"10.00","currency":"EUR"}`, ag))
			resp := client.Do(t, http.MethodPost, "/payments/topups", body, simtest.Token(tok), simtest.IdempotencyKey(uuid.NewString()))
			if resp.Status/100 != 2 {
				t.Fatalf("create top-up: %d %s", resp.Status, resp.Body)
			}
		}
		sim.Advance()

		simEvents := sim.Events()
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
