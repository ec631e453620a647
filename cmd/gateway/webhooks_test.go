package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/upvest-gateway/gateway/internal/server"
	"github.com/upvest-gateway/gateway/internal/upvestsim"
	"github.com/upvest-gateway/gateway/internal/upvestsim/simtest"
	"github.com/upvest-gateway/gateway/internal/webhook/registration"
)

// simTenant is a simulator on loopback and the UPVEST_* environment of a
// gateway that is its tenant.
type simTenant struct {
	sim *upvestsim.Sim
	env map[string]string
}

func newSimTenant(t *testing.T) *simTenant {
	t.Helper()
	key, keyFile, _ := simtest.WriteKey(t, t.TempDir())
	clientID, secret := uuid.NewString(), marker+rand.Text()
	sim, err := upvestsim.New(upvestsim.Config{
		ClientID: clientID, ClientSecret: secret,
		TenantKeys:         map[string]crypto.PublicKey{"tenant-key": key.Public()},
		WebhookBackoffUnit: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return &simTenant{sim: sim, env: map[string]string{
		"UPVEST_BASE_URL":         srv.URL,
		"UPVEST_CLIENT_ID":        clientID,
		"UPVEST_CLIENT_SECRET":    secret,
		"UPVEST_SIGNING_KEY_FILE": keyFile,
		"UPVEST_SIGNING_KEY_ID":   "tenant-key",
		"GATEWAY_ADMIN_ADDR":      "127.0.0.1:0",
	}}
}

// subscriptionsFor are the simulator's subscriptions delivering to url.
func (st *simTenant) subscriptionsFor(url string) []upvestsim.Subscription {
	var out []upvestsim.Subscription
	for _, s := range st.sim.Subscriptions() {
		if s.URL == url {
			out = append(out, s)
		}
	}
	return out
}

// wantOne checks that the simulator holds one subscription for url,
// enabled, for the gateway's categories, and returns it.
func (st *simTenant) wantOne(t *testing.T, url string) upvestsim.Subscription {
	t.Helper()
	subs := st.subscriptionsFor(url)
	if len(subs) != 1 {
		t.Fatalf("%d subscriptions for %s, want 1: %+v", len(subs), url, subs)
	}
	s := subs[0]
	got, want := slices.Sorted(slices.Values(s.Types)), slices.Sorted(slices.Values(registration.Categories))
	if !s.Enabled || !slices.Equal(got, want) || s.MaxPackageSize != 1<<20 {
		t.Fatalf("subscription %+v: want enabled, for %v, packages of 1MiB", s, want)
	}
	return s
}

func runWebhooksT(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(t.Context(), append([]string{"webhooks"}, args...), env, &out, &errOut)
	if strings.Contains(out.String()+errOut.String(), marker) {
		t.Errorf("webhooks %v printed a secret:\n%s%s", args, out.String(), errOut.String())
	}
	return code, out.String(), errOut.String()
}

// TestWebhooksCommands: register twice makes one subscription, enabled;
// list shows it, marked as the gateway's; delete ends it.
func TestWebhooksCommands(t *testing.T) {
	t.Parallel()
	st := newSimTenant(t)
	const public = "https://hooks.example.com/webhooks/upvest"
	env := with(st.env, "GATEWAY_WEBHOOK_PUBLIC_URL", public)

	code, out, errOut := runWebhooksT(t, env, "register")
	if code != exitOK || !strings.HasPrefix(out, "created ") || !strings.Contains(out, "enabled=true") {
		t.Fatalf("first register: exit %d\n%s%s", code, out, errOut)
	}
	s := st.wantOne(t, public)
	code, out, errOut = runWebhooksT(t, env, "register")
	if code != exitOK || !strings.HasPrefix(out, "unchanged "+s.ID) {
		t.Fatalf("second register: exit %d\n%s%s", code, out, errOut)
	}
	st.wantOne(t, public)
	// The flag does what the variable does.
	code, out, _ = runWebhooksT(t, st.env, "register", "--webhook-public-url", public)
	if code != exitOK || !strings.HasPrefix(out, "unchanged "+s.ID) {
		t.Fatalf("register --webhook-public-url: exit %d\n%s", code, out)
	}

	other, err := uuid.NewRandom()
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runWebhooksT(t, env, "list")
	if code != exitOK || !regexp.MustCompile(`(?m)^`+s.ID+`\s+true\s+\S+\s+upvest-gateway\s+`+regexp.QuoteMeta(public)+` \(GATEWAY_WEBHOOK_PUBLIC_URL\)\s+\S*TOPUP`).MatchString(out) {
		t.Fatalf("list: exit %d\n%s%s", code, out, errOut)
	}

	code, out, errOut = runWebhooksT(t, env, "delete", s.ID)
	if code != exitOK || out != "deleted "+s.ID+"\n" || len(st.subscriptionsFor(public)) != 0 {
		t.Fatalf("delete: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = runWebhooksT(t, env, "delete", s.ID, other.String())
	if code != exitFailure || !strings.Contains(errOut, "no subscription "+s.ID) {
		t.Fatalf("delete again: exit %d %s", code, errOut)
	}
}

// TestWebhooksCommandErrors: a missing or bad setting or argument is a
// usage error (exit 2) naming it; Upvest refusing is exit 1; no secret is
// printed either way.
func TestWebhooksCommandErrors(t *testing.T) {
	t.Parallel()
	st := newSimTenant(t)
	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"no command", st.env, nil, exitConfig, "Usage:"},
		{"unknown command", st.env, []string{"frobnicate"}, exitConfig, `"frobnicate" with 0 argument(s) is not a webhooks command`},
		{"register without URL", st.env, []string{"register"}, exitConfig, "GATEWAY_WEBHOOK_PUBLIC_URL is required"},
		{"register plain http", with(st.env, "GATEWAY_WEBHOOK_PUBLIC_URL", "http://hooks.example.com/webhooks/upvest"), []string{"register"}, exitConfig, "GATEWAY_WEBHOOK_PUBLIC_URL \"http://hooks.example.com/webhooks/upvest\" must use https"},
		{"register relative URL", st.env, []string{"register", "--webhook-public-url=/webhooks/upvest"}, exitConfig, "GATEWAY_WEBHOOK_PUBLIC_URL \"/webhooks/upvest\" is not an absolute https URL"},
		{"list with an operand", st.env, []string{"list", "x"}, exitConfig, "not a webhooks command"},
		{"delete without id", st.env, []string{"delete"}, exitConfig, "not a webhooks command"},
		{"delete a non-id", st.env, []string{"delete", "../x"}, exitConfig, `"../x" is not a subscription id`},
		{"simulate", st.env, []string{"list", "--simulate"}, exitConfig, "--simulate has no Upvest"},
		{"unknown flag", st.env, []string{"list", "--nope"}, exitConfig, "provided but not defined: --nope"},
		{"missing client id", with(st.env, "UPVEST_CLIENT_ID", ""), []string{"list"}, exitConfig, "UPVEST_CLIENT_ID is required"},
		{"unreadable key", with(st.env, "UPVEST_SIGNING_KEY_FILE", "/nonexistent/key.pem"), []string{"list"}, exitConfig, "UPVEST_SIGNING_KEY_FILE \"/nonexistent/key.pem\" does not exist"},
		{"wrong secret", with(st.env, "UPVEST_CLIENT_SECRET", marker+"-wrong"), []string{"list"}, exitFailure, "gateway webhooks list: listing the subscriptions: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runWebhooksT(t, tc.env, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, want %d; stderr %q does not say %q (stdout %q)", code, tc.code, errOut, tc.want, out)
			}
		})
	}
	if n := len(st.sim.Subscriptions()); n != 0 {
		t.Errorf("%d subscriptions made by failing commands", n)
	}
}

// inProcess is a gateway run in this process by run().
type inProcess struct {
	stdout, stderr *syncBuffer
	done           chan int
	stop           context.CancelFunc
}

var listeningLine = regexp.MustCompile(`(?m)^gateway: listening grpc=(\S+) http=(\S+)$`)

// startInProcess runs the gateway with env until the test ends.
func startInProcess(t *testing.T, env map[string]string) *inProcess {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	g := &inProcess{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan int, 1), stop: stop}
	go func() { g.done <- run(ctx, nil, env, g.stdout, g.stderr) }()
	t.Cleanup(func() {
		stop()
		select {
		case <-g.done:
		case <-time.After(60 * time.Second):
			t.Error("the gateway did not stop")
		}
	})
	return g
}

// httpAddr waits for the listening line; it fails the test if the gateway
// exits first.
func (g *inProcess) httpAddr(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if m := listeningLine.FindStringSubmatch(g.stdout.String()); m != nil {
			return m[2]
		}
		select {
		case code := <-g.done:
			g.done <- code
			t.Fatalf("the gateway exited %d before listening:\n%s", code, g.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("no listening line:\n%s\n%s", g.stdout.String(), g.stderr.String())
	return ""
}

// forwarder is the public face of the gateways, as a load balancer or an
// ingress is: Upvest delivers to it, it forwards to the gateway set last.
type forwarder struct {
	srv    *httptest.Server
	target atomic.Pointer[url.URL]
}

func newForwarder(t *testing.T) *forwarder {
	f := &forwarder{}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		if u := f.target.Load(); u != nil {
			r.SetURL(u)
			r.Out.Host = r.In.Host
		}
	}}
	f.srv = httptest.NewServer(proxy)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *forwarder) url() string { return f.srv.URL + server.WebhookPath }

func (f *forwarder) to(httpAddr string) { f.target.Store(&url.URL{Scheme: "http", Host: httpAddr}) }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStartupRegistration: two replicas with GATEWAY_WEBHOOK_PUBLIC_URL
// starting at once register one subscription, enabled, before they serve;
// Upvest's deliveries through it are accepted, and the receiver is bound
// to it: a delivery naming another subscription is refused.
func TestStartupRegistration(t *testing.T) {
	t.Parallel()
	st := newSimTenant(t)
	fwd := newForwarder(t)
	base := with(st.env, "GATEWAY_WEBHOOK_PUBLIC_URL", fwd.url(), "GATEWAY_GRPC_ADDR", "127.0.0.1:0", "GATEWAY_HTTP_ADDR", "127.0.0.1:0")
	a := startInProcess(t, with(base, "GATEWAY_DATA_DIR", t.TempDir()))
	b := startInProcess(t, with(base, "GATEWAY_DATA_DIR", t.TempDir()))
	addrA := a.httpAddr(t)
	b.httpAddr(t)
	fwd.to(addrA)

	s := st.wantOne(t, fwd.url())
	for name, g := range map[string]*inProcess{"a": a, "b": b} {
		logs := g.stderr.String()
		if !strings.Contains(logs, `"msg":"webhook subscription registered"`) || !strings.Contains(logs, `"webhook_id":"`+s.ID+`"`) {
			t.Fatalf("replica %s did not log the registration of %s:\n%s", name, s.ID, logs)
		}
		if strings.Contains(logs, "no webhook subscription ids known") {
			t.Errorf("replica %s started its receiver unbound:\n%s", name, logs)
		}
		if strings.Contains(logs, marker) {
			t.Errorf("replica %s logged a secret", name)
		}
	}

	// A top-up made through the gateway comes back by webhook through the
	// registered subscription, and is taken.
	ag := uuid.NewString()
	resp, err := http.Post("http://"+addrA+"/v1/payments/topups", "application/json",
		strings.NewReader(`{"request_id":"`+uuid.NewString()+`","account_group_id":"`+ag+`","cash_amount":"10.00","currency":"EUR"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create top-up: %d", resp.StatusCode)
	}
	waitFor(t, "a delivery through the registered subscription", func() bool {
		return slices.ContainsFunc(st.sim.Deliveries(), func(d upvestsim.DeliveryRecord) bool {
			return d.WebhookID == s.ID && d.Status == http.StatusOK
		})
	})
	if logs := a.stderr.String(); strings.Contains(logs, "event quarantined") {
		t.Fatalf("an event of the registered subscription was quarantined:\n%s", logs)
	}

	foreign, _ := json.Marshal(map[string]any{
		"id": uuid.NewString(), "created_at": "2026-01-02T10:00:00Z", "type": "TOPUP.SETTLED", "webhook_id": uuid.NewString(),
		"object": map[string]any{"id": uuid.NewString(), "account_group_id": ag, "status": "SETTLED", "cash_amount": "5.00", "currency": "EUR"},
	})
	code, err := st.sim.SendDelivery(t.Context(), fwd.url(), []byte(`{"payload":[`+string(foreign)+`]}`))
	if err != nil || code != http.StatusForbidden {
		t.Fatalf("a delivery naming another subscription: %d %v, want 403", code, err)
	}
}

// TestStartupRegistrationRetries: while Upvest cannot be reached the
// gateway serves anyway, unbound, and registers once it can.
func TestStartupRegistrationRetries(t *testing.T) {
	t.Parallel()
	st := newSimTenant(t)
	st.sim.InjectFault(upvestsim.Fault{Kind: upvestsim.Fault503, PathPrefix: "/webhooks", Count: 1 << 20})
	public := "https://hooks.example.com/webhooks/upvest"
	g := startInProcess(t, with(st.env, "GATEWAY_WEBHOOK_PUBLIC_URL", public, "GATEWAY_GRPC_ADDR", "127.0.0.1:0", "GATEWAY_HTTP_ADDR", "127.0.0.1:0",
		"GATEWAY_DATA_DIR", t.TempDir()))
	g.httpAddr(t)
	if logs := g.stderr.String(); !strings.Contains(logs, "trying again in the background") {
		t.Fatalf("no word of the failed registration:\n%s", logs)
	}
	st.sim.ClearFaults()
	waitFor(t, "the subscription", func() bool { return len(st.subscriptionsFor(public)) == 1 && st.subscriptionsFor(public)[0].Enabled })
	st.wantOne(t, public)
	waitFor(t, "the registration's log line", func() bool {
		return strings.Contains(g.stderr.String(), `"msg":"webhook subscription registered"`)
	})
}

// TestStartupRegistrationRefused: credentials Upvest refuses stop start-up
// at once with one line naming the setting, and no secret.
func TestStartupRegistrationRefused(t *testing.T) {
	t.Parallel()
	st := newSimTenant(t)
	g := startInProcess(t, with(st.env, "UPVEST_CLIENT_SECRET", marker+"-wrong", "GATEWAY_WEBHOOK_PUBLIC_URL", "https://hooks.example.com/webhooks/upvest",
		"GATEWAY_GRPC_ADDR", "127.0.0.1:0", "GATEWAY_HTTP_ADDR", "127.0.0.1:0", "GATEWAY_DATA_DIR", t.TempDir()))
	var code int
	select {
	case code = <-g.done:
		g.done <- code
	case <-time.After(60 * time.Second):
		t.Fatal("start-up did not stop")
	}
	stderr := g.stderr.String()
	last := stderr[strings.LastIndex(strings.TrimSuffix(stderr, "\n"), "\n")+1:]
	if rec := fatalLine(t, last); code != exitFailure || !strings.HasPrefix(rec.Msg, "gateway: GATEWAY_WEBHOOK_PUBLIC_URL: webhook registration: ") || !strings.Contains(last, "401") {
		t.Fatalf("exit %d, last line %q", code, last)
	}
	if strings.Contains(stderr+g.stdout.String(), marker) {
		t.Fatalf("a secret was printed:\n%s", stderr)
	}
	if strings.Contains(g.stdout.String(), "listening") {
		t.Fatal("the gateway served")
	}
}
