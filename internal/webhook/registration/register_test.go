package registration_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/upvest-gateway/gateway/internal/upstream"
	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
	"github.com/upvest-gateway/gateway/internal/upvestsim"
	"github.com/upvest-gateway/gateway/internal/webhook"
	"github.com/upvest-gateway/gateway/internal/webhook/registration"
)

// tenant is a simulator on loopback and the means to make clients of it.
type tenant struct {
	sim      *upvestsim.Sim
	url      string
	clientID string
	secret   string
	signer   *httpsig.Signer
}

func newTenant(t *testing.T) *tenant {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tn := &tenant{clientID: uuid.NewString(), secret: rand.Text()}
	tn.sim, err = upvestsim.New(upvestsim.Config{
		ClientID: tn.clientID, ClientSecret: tn.secret,
		TenantKeys:         map[string]crypto.PublicKey{"k1": key.Public()},
		WebhookBackoffUnit: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tn.sim.Close)
	srv := httptest.NewServer(tn.sim)
	t.Cleanup(srv.Close)
	tn.url = srv.URL
	if tn.signer, err = httpsig.NewSigner(key, "k1"); err != nil {
		t.Fatal(err)
	}
	return tn
}

// client is a client with the scopes given (webhooks:admin by default), as
// each replica has its own.
func (tn *tenant) client(t *testing.T, scopes ...string) *upstream.Client {
	t.Helper()
	if len(scopes) == 0 {
		scopes = []string{upstream.ScopeWebhooksAdmin}
	}
	c, err := upstream.New(upstream.Config{BaseURL: tn.url, ClientID: tn.clientID, ClientSecret: tn.secret, Signer: tn.signer, Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

const hookURL = "https://hooks.example.com/webhooks/upvest"

// only checks that the simulator holds exactly one subscription for url,
// enabled, for the gateway's categories, and returns it.
func only(t *testing.T, sim *upvestsim.Sim, url string) upvestsim.Subscription {
	t.Helper()
	var ours []upvestsim.Subscription
	for _, s := range sim.Subscriptions() {
		if s.URL == url {
			ours = append(ours, s)
		}
	}
	if len(ours) != 1 {
		t.Fatalf("%d subscriptions for %s, want 1: %+v", len(ours), url, ours)
	}
	s := ours[0]
	if !s.Enabled || !sameSet(s.Types, registration.Categories) || s.Title != registration.DefaultTitle {
		t.Fatalf("subscription %+v: want enabled, titled %q, for %v", s, registration.DefaultTitle, registration.Categories)
	}
	return s
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// TestRegisterTwice: the first run creates the subscription (Upvest makes
// it disabled) and enables it; the second finds it as wanted and changes
// nothing: one subscription, enabled.
func TestRegisterTwice(t *testing.T) {
	t.Parallel()
	tn := newTenant(t)
	c := tn.client(t)
	subs, _ := webhook.NewSubscriptions()
	want := registration.Subscription{URL: hookURL, MaxPackageSize: 1 << 20}

	first, err := registration.Register(ctx(t), c, want, registration.BindTo(subs))
	if err != nil {
		t.Fatal(err)
	}
	s := only(t, tn.sim, hookURL)
	if !first.Created || !first.Updated || first.Webhook.ID != s.ID || !first.Webhook.Enabled || s.MaxPackageSize != 1<<20 {
		t.Fatalf("first run %+v, simulator %+v", first, s)
	}
	if !subs.Contains(s.ID) || !slices.Equal(first.IDs, []string{s.ID}) {
		t.Fatalf("bound %v, result ids %v, want %s", subs.IDs(), first.IDs, s.ID)
	}

	second, err := registration.Register(ctx(t), tn.client(t), want)
	if err != nil {
		t.Fatal(err)
	}
	if second.Created || second.Updated || second.Webhook.ID != s.ID || len(second.Removed) != 0 {
		t.Fatalf("second run %+v, want the same subscription untouched", second)
	}
	if again := only(t, tn.sim, hookURL); !again.UpdatedAt.Equal(s.UpdatedAt) {
		t.Fatalf("the second run changed the subscription: %+v", again)
	}
}

// TestRegisterUpdates: a subscription for our URL made by hand (disabled,
// for every category, another title) is taken over and brought up to date
// rather than a second one made; one with our title at another URL is
// reported and left alone.
func TestRegisterUpdates(t *testing.T) {
	t.Parallel()
	tn := newTenant(t)
	c := tn.client(t)
	byHand, err := c.CreateWebhook(ctx(t), upstream.CreateWebhookRequest{Title: "by hand", URL: hookURL})
	if err != nil {
		t.Fatal(err)
	}
	old, err := c.CreateWebhook(ctx(t), upstream.CreateWebhookRequest{Title: registration.DefaultTitle, URL: "https://old.example.com/webhooks/upvest"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := registration.Register(ctx(t), c, registration.Subscription{URL: hookURL})
	if err != nil {
		t.Fatal(err)
	}
	s := only(t, tn.sim, hookURL)
	if res.Created || !res.Updated || s.ID != byHand.ID {
		t.Fatalf("result %+v, simulator %+v: want %s updated", res, s, byHand.ID)
	}
	if len(res.Elsewhere) != 1 || res.Elsewhere[0].ID != old.ID {
		t.Fatalf("elsewhere %+v, want %s", res.Elsewhere, old.ID)
	}
	if n := len(tn.sim.Subscriptions()); n != 2 {
		t.Fatalf("%d subscriptions, want the two made by hand", n)
	}
}

// TestRegisterRemovesDuplicates: of several subscriptions for our URL the
// oldest is kept and the others deleted; all their ids stay bound, as
// deliveries of theirs may be under way.
func TestRegisterRemovesDuplicates(t *testing.T) {
	t.Parallel()
	tn := newTenant(t)
	c := tn.client(t)
	var ids []string
	for range 3 {
		w, err := c.CreateWebhook(ctx(t), upstream.CreateWebhookRequest{Title: registration.DefaultTitle, URL: hookURL, Type: registration.Categories})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, w.ID)
	}
	subs, _ := webhook.NewSubscriptions()
	res, err := registration.Register(ctx(t), c, registration.Subscription{URL: hookURL}, registration.BindTo(subs))
	if err != nil {
		t.Fatal(err)
	}
	s := only(t, tn.sim, hookURL)
	if s.ID != ids[0] || res.Webhook.ID != ids[0] || !sameSet(res.Removed, ids[1:]) || !sameSet(subs.IDs(), ids) {
		t.Fatalf("kept %s, removed %v, bound %v; created %v", s.ID, res.Removed, subs.IDs(), ids)
	}
}

// TestRegisterAfterDelete: after the subscription was deleted, registering
// again makes a new one, even though Upvest replays the first create's
// answer (same body, same idempotency-key) naming the deleted one.
func TestRegisterAfterDelete(t *testing.T) {
	t.Parallel()
	tn := newTenant(t)
	c := tn.client(t)
	first, err := registration.Register(ctx(t), c, registration.Subscription{URL: hookURL})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteWebhook(ctx(t), first.Webhook.ID); err != nil {
		t.Fatal(err)
	}
	second, err := registration.Register(ctx(t), c, registration.Subscription{URL: hookURL})
	if err != nil {
		t.Fatal(err)
	}
	s := only(t, tn.sim, hookURL)
	if s.ID == first.Webhook.ID || second.Webhook.ID != s.ID || !second.Created {
		t.Fatalf("first %s, second %+v, simulator %+v", first.Webhook.ID, second, s)
	}
}

// TestRegisterConcurrently: replicas starting at once end with one
// subscription, and all agree on it. Each asks for another package size,
// so their create requests differ and Upvest's idempotency cannot make
// them one: the agreement comes from keeping the oldest.
func TestRegisterConcurrently(t *testing.T) {
	t.Parallel()
	for _, sameBody := range []bool{true, false} {
		tn := newTenant(t)
		const replicas = 4
		var wg sync.WaitGroup
		results := make([]*registration.Result, replicas)
		errs := make([]error, replicas)
		start := make(chan struct{})
		for i := range replicas {
			c := tn.client(t)
			want := registration.Subscription{URL: hookURL}
			if !sameBody {
				want.MaxPackageSize = 1000 + i
			}
			wg.Go(func() {
				<-start
				results[i], errs[i] = registration.Register(ctx(t), c, want)
			})
		}
		close(start)
		wg.Wait()
		s := only(t, tn.sim, hookURL)
		for i := range replicas {
			if errs[i] != nil {
				t.Fatalf("same body %t: replica %d: %v", sameBody, i, errs[i])
			}
			if results[i].Webhook.ID != s.ID || !slices.Contains(results[i].IDs, s.ID) {
				t.Fatalf("same body %t: replica %d kept %s, the simulator has %s", sameBody, i, results[i].Webhook.ID, s.ID)
			}
		}
	}
}

// TestRegisteredSubscriptionDelivers: once registered, Upvest's events of
// the gateway's categories reach the URL, naming the subscription.
func TestRegisteredSubscriptionDelivers(t *testing.T) {
	t.Parallel()
	tn := newTenant(t)
	got := make(chan []byte, 16)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- b
	}))
	t.Cleanup(rcv.Close)
	res, err := registration.Register(ctx(t), tn.client(t), registration.Subscription{URL: rcv.URL + "/webhooks/upvest"})
	if err != nil {
		t.Fatal(err)
	}
	c := tn.client(t, "topups:admin")
	if _, err := c.CreateTopup(ctx(t), upstream.CreateTopupRequest{AccountGroupID: uuid.NewString(), CashAmount: "10.00", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for !seen["TOPUP.CONFIRMED"] || !seen["CASH_BALANCE.UPDATED"] {
		select {
		case body := <-got:
			var d struct {
				Payload []struct {
					Type      string `json:"type"`
					WebhookID string `json:"webhook_id"`
				} `json:"payload"`
			}
			if err := json.Unmarshal(body, &d); err != nil {
				t.Fatalf("delivery %s: %v", body, err)
			}
			for _, ev := range d.Payload {
				if ev.WebhookID != res.Webhook.ID {
					t.Fatalf("event %s names subscription %s, want %s", ev.Type, ev.WebhookID, res.Webhook.ID)
				}
				seen[ev.Type] = true
			}
		case <-ctx(t).Done():
			t.Fatalf("deliveries seen: %v", seen)
		}
	}
}

// TestRegisterRefused: a client without webhooks:admin gets Upvest's 403,
// named; an invalid subscription is refused before any request.
func TestRegisterRefused(t *testing.T) {
	t.Parallel()
	tn := newTenant(t)
	_, err := registration.Register(ctx(t), tn.client(t, upstream.ScopeWebhooksRead), registration.Subscription{URL: hookURL})
	if e, ok := upstream.AsError(err); !ok || e.StatusCode != http.StatusForbidden || !strings.HasPrefix(err.Error(), "webhook registration: ") {
		t.Fatalf("read-only client: %v", err)
	}
	before := len(tn.sim.Requests())
	for _, bad := range []registration.Subscription{
		{},
		{URL: "hooks.example.com/webhooks/upvest"},
		{URL: "ftp://hooks.example.com/"},
		{URL: "https://user:pw@hooks.example.com/"},
		{URL: "https://hooks.example.com/#x"},
		{URL: "https://hooks.example.com/" + strings.Repeat("a", 1000)},
		{URL: hookURL, Title: strings.Repeat("t", 101)},
		{URL: hookURL, MaxPackageSize: 99},
		{URL: hookURL, MaxPackageSize: 1<<20 + 1},
	} {
		_, err := registration.Register(ctx(t), tn.client(t), bad)
		if err == nil || strings.Contains(err.Error(), "pw") {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	if after := len(tn.sim.Requests()); after != before {
		t.Errorf("%d requests sent for invalid subscriptions", after-before)
	}
}
