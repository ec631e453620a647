package upstream

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
)

const (
	agID   = "1ea60f56-b67b-61fc-829a-0242ac130003"
	userID = "82b49999-1145-4e05-916a-567662daa7bc"
)

var created = time.Date(2020, 8, 24, 14, 15, 22, 0, time.UTC)

var (
	componentsCreate = []string{"@method", "@path", "accept", "authorization", "content-type", "content-length", "content-digest", "idempotency-key", "upvest-client-id"}
	componentsRead   = []string{"@method", "@path", "accept", "authorization", "upvest-client-id"}
	componentsQuery  = []string{"@method", "@path", "@query", "accept", "authorization", "upvest-client-id"}
	componentsUpdate = []string{"@method", "@path", "accept", "authorization", "content-type", "content-length", "content-digest", "upvest-client-id"}
)

type opCase struct {
	name       string
	call       func(context.Context, *Client, ...CallOption) (any, error)
	method     string
	path       string // escaped, as it must arrive
	query      string
	body       string // exact bytes sent; "" for none
	components []string
	status     int
	answer     string
	want       any
}

func opCases() []opCase {
	vcReq := VirtualCashRequest{AccountGroupID: agID, Amount: "200.00", Currency: "EUR"}
	vcBody := `{"account_group_id":"` + agID + `","amount":"200.00","currency":"EUR"}`
	vcAnswer := `{"id":"6ffa6b16-2380-4e7a-88b2-ae625c8eef99","created_at":"2020-08-24T14:15:22Z","updated_at":"2020-08-24T14:15:22Z","account_group_id":"` + agID + `","amount":"200.00","currency":"EUR","status":"ISSUED","added_in_a_later_version":{"x":1}}`
	topupAnswer := `{"id":"1ab4fef9-a097-4c6f-9345-647025d5fde6","created_at":"2020-08-24T14:15:22Z","account_group_id":"` + agID + `","cash_amount":"200.00","currency":"EUR","status":"CONFIRMED","settlement_reference":"REF-1"}`
	topup := Topup{ID: "1ab4fef9-a097-4c6f-9345-647025d5fde6", CreatedAt: created, AccountGroupID: agID, CashAmount: "200.00", Currency: "EUR", Status: "CONFIRMED", SettlementReference: "REF-1"}
	ddAnswer := `{"account_group_id":"` + agID + `","cash_amount":"200.00","created_at":"2020-08-24T14:15:22Z","currency":"EUR","id":"1ab4fef9-a097-4c6f-9345-647025d5fde6","mandate_id":"730b8719-0bc6-401d-98dd-b2de72afbf05","remittance_information":"payment for green energy portfolio","status":"NEW","user_id":"` + userID + `"}`
	dd := DirectDebit{ID: "1ab4fef9-a097-4c6f-9345-647025d5fde6", CreatedAt: created, UserID: userID, AccountGroupID: agID, MandateID: "730b8719-0bc6-401d-98dd-b2de72afbf05", CashAmount: "200.00", Currency: "EUR", RemittanceInformation: "payment for green energy portfolio", Status: "NEW"}
	wdAnswer := `{"account_group_id":"` + agID + `","amount":"200.00","created_at":"2020-08-24T14:15:22Z","currency":"EUR","id":"6ffa6b16-2380-4e7a-88b2-ae625c8eef99","reference_account_id":"295378ec-036e-4f3f-ae5c-2be85c93e837","remittance_information":"Withdrawal","status":"NEW","updated_at":"2020-08-24T14:15:22Z","user_id":"` + userID + `"}`
	wd := Withdrawal{ID: "6ffa6b16-2380-4e7a-88b2-ae625c8eef99", CreatedAt: created, UpdatedAt: created, UserID: userID, AccountGroupID: agID, ReferenceAccountID: "295378ec-036e-4f3f-ae5c-2be85c93e837", Amount: "200.00", Currency: "EUR", RemittanceInformation: "Withdrawal", Status: "NEW"}
	meta := `"meta":{"offset":20,"limit":10,"count":1,"total_count":21,"sort":"created_at","order":"DESC"}`
	wantMeta := ListMeta{Offset: 20, Limit: 10, Count: 1, TotalCount: 21, Sort: "created_at", Order: "DESC"}
	paging := ListParams{Limit: 10, Offset: 20, Sort: "created_at", Order: "DESC"}
	const pagingQuery = "limit=10&offset=20&order=DESC&sort=created_at"
	// An id that is not one path segment must arrive as one, escaped.
	const oddID, oddIDEscaped = "a/b ?c#d", "a%2Fb%20%3Fc%23d"
	whAnswer := `{"id":"a8eb3540-5a84-40f9-b2bb-7f99f282fc5a","created_at":"2020-08-24T14:15:22Z","updated_at":"2020-08-24T14:15:22Z","title":"upvest-gateway","url":"https://hooks.example.com/webhooks/upvest","enabled":false,"type":["TOPUP","CASH_BALANCE"],"config":{"delay":"5s","max_package_size":10240}}`
	wh := Webhook{ID: "a8eb3540-5a84-40f9-b2bb-7f99f282fc5a", CreatedAt: created, UpdatedAt: created, Title: "upvest-gateway", URL: "https://hooks.example.com/webhooks/upvest",
		Type: []string{"TOPUP", "CASH_BALANCE"}, Config: WebhookConfig{Delay: "5s", MaxPackageSize: 10240}}
	enabled, off := true, false

	return []opCase{
		{
			name: "CreateVirtualCashIncrease",
			call: func(ctx context.Context, c *Client, o ...CallOption) (any, error) {
				return c.CreateVirtualCashIncrease(ctx, vcReq, o...)
			},
			method: "POST", path: "/virtual_cash_balances/increases", body: vcBody, components: componentsCreate,
			status: http.StatusAccepted, answer: vcAnswer,
			want: &VirtualCashIncrease{ID: "6ffa6b16-2380-4e7a-88b2-ae625c8eef99", CreatedAt: created, UpdatedAt: created, AccountGroupID: agID, Amount: "200.00", Currency: "EUR", Status: "ISSUED"},
		},
		{
			name: "CreateVirtualCashDecrease",
			call: func(ctx context.Context, c *Client, o ...CallOption) (any, error) {
				return c.CreateVirtualCashDecrease(ctx, vcReq, o...)
			},
			method: "POST", path: "/virtual_cash_balances/decreases", body: vcBody, components: componentsCreate,
			status: http.StatusOK, answer: vcAnswer,
			want: &VirtualCashDecrease{ID: "6ffa6b16-2380-4e7a-88b2-ae625c8eef99", CreatedAt: created, UpdatedAt: created, AccountGroupID: agID, Amount: "200.00", Currency: "EUR", Status: "ISSUED"},
		},
		{
			name: "CancelVirtualCashDecrease",
			call: func(ctx context.Context, c *Client, o ...CallOption) (any, error) {
				return nil, c.CancelVirtualCashDecrease(ctx, oddID, o...)
			},
			method: "DELETE", path: "/virtual_cash_balances/decreases/" + oddIDEscaped, components: componentsRead,
			status: http.StatusNoContent,
		},
		{
			name: "CreateTopup",
			call: func(ctx context.Context, c *Client, o ...CallOption) (any, error) {
				return c.CreateTopup(ctx, CreateTopupRequest{AccountGroupID: agID, CashAmount: "200.00", Currency: "EUR"}, o...)
			},
			method: "POST", path: "/payments/topups", body: `{"account_group_id":"` + agID + `","cash_amount":"200.00","currency":"EUR"}`,
			components: componentsCreate, status: http.StatusCreated, answer: topupAnswer, want: &topup,
		},
		{
			name: "GetTopup",
			call: func(ctx context.Context, c *Client, o ...CallOption) (any, error) {
				return c.GetTopup(ctx, oddID, o...)
			},
			method: "GET", path: "/payments/topups/" + oddIDEscaped, components: componentsRead,
			status: http.StatusOK, answer: topupAnswer, want: &topup,
		},
		{
			name: "ListTopups",
			call: func(ctx context.Context, c *Client, o ...CallOption) (any, error) {
				return c.ListTopups(ctx, agID, paging, o...)
			},
			method: "GET", path: "/account_groups/" + agID + "/payments/topups", query: pagingQuery, components: componentsQuery,
			status: http.StatusOK, answer: `{` + meta + `,"data":[` + topupAnswer + `]}`,
			want: &List[Topup]{Meta: wantMeta, Data: []Topup{topup}},
		},
		{
			name: "ListTopupsDefaults",
			call: func(ctx context.Context, c *Client, o ...CallOption) (any, error) {
				return c.ListTopups(ctx, oddID, ListParams{}, o...)
			},
			method: "GET", path: "/account_groups/" + oddIDEscaped + "/payments/topups", components: componentsRead,
			status: http.StatusOK, answer: `{"meta":{"offset":0,"limit":100,"count":0,"total_count":0},"data":[]}`,
			want: &List[Topup]{Meta: ListMeta{Limit: 100}, Data: []Topup{}},
		},
		{
			name: "CancelTopup",
			call: func(ctx context.Context, c *Client, o ...CallOption) (any, error) {
				return nil, c.CancelTopup(ctx, "1ab4fef9-a097-4c6f-9345-647025d5fde6", o...)
			},
			method: "DELETE", path: "/payments/topups/1ab4fef9-a097-4c6f-9345-647025d5fde6", components: componentsRead,
			status: http.StatusOK, // a 2xx with a body the client ignores
			answer: `{"ignored":true}`,
		},
		{
			name: "CreateDirectDebit",
			call: func(ctx context.Context, c *Client, o ...CallOption) (any, error) {
				return c.CreateDirectDebit(ctx, CreateDirectDebitRequest{UserID: userID, AccountGroupID: agID, MandateID: "730b8719-0bc6-401d-98dd-b2de72afbf05", CashAmount: "200.00", RemittanceInformation: "payment for green energy portfolio"}, o...)
			},
			method: "POST", path: "/payments/direct_debits",
			body:       `{"user_id":"` + userID + `","account_group_id":"` + agID + `","mandate_id":"730b8719-0bc6-401d-98dd-b2de72afbf05","cash_amount":"200.00","remittance_information":"payment for green energy portfolio"}`,
			components: componentsCreate, status: http.StatusCreated, answer: ddAnswer, want: &dd,
		},
		{
			name: "GetDirectDebit",
			call: func(ctx context.Context, c *Client, o ...CallOption) (any, error) {
				return c.GetDirectDebit(ctx, oddID, o...)
			},
			method: "GET", path: "/payments/direct_debits/" + oddIDEscaped, components: componentsRead,
			status: http.StatusOK, answer: ddAnswer, want: &dd,
		},
		{
			name: "ListDirectDebits",
			call: func(ctx context.Context, c *Client, o ...CallOption) (any, error) {
				return c.ListDirectDebits(ctx, agID, ListParams{Limit: 1000}, o...)
			},
			method: "GET", path: "/account_groups/" + agID + "/payments/direct_debits", query: "limit=1000", components: componentsQuery,
			status: http.StatusOK, answer: `{` + meta + `,"data":[` + ddAnswer + `]}`,
			want: &List[DirectDebit]{Meta: wantMeta, Data: []DirectDebit{dd}},
		},
		{
			name: "CreateWithdrawal",
			call: func(ctx context.Context, c *Client, o ...CallOption) (any, error) {
				return c.CreateWithdrawal(ctx, CreateWithdrawalRequest{ReferenceAccountID: "295378ec-036e-4f3f-ae5c-2be85c93e837", AccountGroupID: agID, UserID: userID, Amount: "200.00", RemittanceInformation: "Withdrawal"}, o...)
			},
			method: "POST", path: "/payments/withdrawals",
			body:       `{"reference_account_id":"295378ec-036e-4f3f-ae5c-2be85c93e837","account_group_id":"` + agID + `","user_id":"` + userID + `","amount":"200.00","remittance_information":"Withdrawal"}`,
			components: componentsCreate, status: http.StatusCreated, answer: wdAnswer, want: &wd,
		},
		{
			name: "GetWithdrawal",
			call: func(ctx context.Context, c *Client, o ...CallOption) (any, error) {
				return c.GetWithdrawal(ctx, oddID, o...)
			},
			method: "GET", path: "/payments/withdrawals/" + oddIDEscaped, components: componentsRead,
			status: http.StatusOK, answer: wdAnswer, want: &wd,
		},
		{
			name: "ListWithdrawals",
			call: func(ctx context.Context, c *Client, o ...CallOption) (any, error) {
				return c.ListWithdrawals(ctx, agID, ListParams{Offset: 5, Sort: "id"}, o...)
			},
			method: "GET", path: "/account_groups/" + agID + "/payments/withdrawals", query: "offset=5&sort=id", components: componentsQuery,
			status: http.StatusOK, answer: `{` + meta + `,"data":[` + wdAnswer + `]}`,
			want: &List[Withdrawal]{Meta: wantMeta, Data: []Withdrawal{wd}},
		},
		{
			name: "CancelWithdrawal",
			call: func(ctx context.Context, c *Client, o ...CallOption) (any, error) {
				return nil, c.CancelWithdrawal(ctx, oddID, o...)
			},
			method: "DELETE", path: "/payments/withdrawals/" + oddIDEscaped, components: componentsRead,
			status: http.StatusAccepted,
		},
		{
			name: "CreateWebhook",
			call: func(ctx context.Context, c *Client, o ...CallOption) (any, error) {
				return c.CreateWebhook(ctx, CreateWebhookRequest{Title: "upvest-gateway", URL: "https://hooks.example.com/webhooks/upvest", Type: []string{"TOPUP", "CASH_BALANCE"}, Config: &WebhookConfig{MaxPackageSize: 10240}}, o...)
			},
			method: "POST", path: "/webhooks", components: componentsCreate,
			body:   `{"title":"upvest-gateway","url":"https://hooks.example.com/webhooks/upvest","type":["TOPUP","CASH_BALANCE"],"config":{"max_package_size":10240}}`,
			status: http.StatusCreated, answer: whAnswer, want: &wh,
		},
		{
			name: "GetWebhook",
			call: func(ctx context.Context, c *Client, o ...CallOption) (any, error) {
				return c.GetWebhook(ctx, oddID, o...)
			},
			method: "GET", path: "/webhooks/" + oddIDEscaped, components: componentsRead,
			status: http.StatusOK, answer: whAnswer, want: &wh,
		},
		{
			name: "ListWebhooks",
			call: func(ctx context.Context, c *Client, o ...CallOption) (any, error) {
				return c.ListWebhooks(ctx, paging, o...)
			},
			method: "GET", path: "/webhooks", query: pagingQuery, components: componentsQuery,
			status: http.StatusOK, answer: `{` + meta + `,"data":[` + whAnswer + `]}`,
			want: &List[Webhook]{Meta: wantMeta, Data: []Webhook{wh}},
		},
		{
			name: "UpdateWebhookEnable",
			call: func(ctx context.Context, c *Client, o ...CallOption) (any, error) {
				return c.UpdateWebhook(ctx, oddID, UpdateWebhookRequest{Enabled: &enabled}, o...)
			},
			method: "PATCH", path: "/webhooks/" + oddIDEscaped, body: `{"enabled":true}`, components: componentsUpdate,
			status: http.StatusOK, answer: whAnswer, want: &wh,
		},
		{
			name: "UpdateWebhookDisable",
			call: func(ctx context.Context, c *Client, o ...CallOption) (any, error) {
				return c.UpdateWebhook(ctx, "a8eb3540-5a84-40f9-b2bb-7f99f282fc5a", UpdateWebhookRequest{Enabled: &off, Type: []string{"TOPUP"}}, o...)
			},
			method: "PATCH", path: "/webhooks/a8eb3540-5a84-40f9-b2bb-7f99f282fc5a", body: `{"enabled":false,"type":["TOPUP"]}`, components: componentsUpdate,
			status: http.StatusOK, answer: whAnswer, want: &wh,
		},
		{
			name: "DeleteWebhook",
			call: func(ctx context.Context, c *Client, o ...CallOption) (any, error) {
				return nil, c.DeleteWebhook(ctx, oddID, o...)
			},
			method: "DELETE", path: "/webhooks/" + oddIDEscaped, components: componentsRead,
			status: http.StatusNoContent,
		},
		{
			name: "GetCashBalance",
			call: func(ctx context.Context, c *Client, o ...CallOption) (any, error) {
				return c.GetCashBalance(ctx, agID, o...)
			},
			method: "GET", path: "/account_groups/" + agID + "/payments/cash_balance", components: componentsRead,
			status: http.StatusOK,
			answer: `{"account_group_id":"` + agID + `","currency":"EUR","balance":"-12345678901234567890.123456789012345678901234567","locked_for_trading":"0.00","pending_settlement":"1.5","available_for_withdrawal":"0","available_for_trading":"0.01"}`,
			want:   &CashBalance{AccountGroupID: agID, Currency: "EUR", Balance: "-12345678901234567890.123456789012345678901234567", LockedForTrading: "0.00", PendingSettlement: "1.5", AvailableForWithdrawal: "0", AvailableForTrading: "0.01"},
		},
	}
}

func TestOperations(t *testing.T) {
	for _, tc := range opCases() {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeUpstream(t)
			f.setAPI(func(w http.ResponseWriter, r *http.Request, n int) {
				if tc.answer == "" {
					w.WriteHeader(tc.status)
					return
				}
				writeJSON(w, tc.status, tc.answer)
			})
			c := f.client(t)
			var info ResponseInfo
			got, err := tc.call(testContext(t), c, WithResponseInfo(&info))
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if tc.want != nil && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("decoded\n got %#v\nwant %#v", got, tc.want)
			}

			reqs := f.apiRequests()
			if len(reqs) != 1 {
				t.Fatalf("%d API requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != tc.method || r.Path != tc.path || r.RawQuery != tc.query {
				t.Errorf("request %s %s ? %q, want %s %s ? %q", r.Method, r.Path, r.RawQuery, tc.method, tc.path, tc.query)
			}
			if string(r.Body) != tc.body {
				t.Errorf("body\n got %s\nwant %s", r.Body, tc.body)
			}
			if r.VerifyErr != nil {
				t.Fatalf("signature: %v", r.VerifyErr)
			}
			if !slices.Equal(r.Verified.Components, tc.components) {
				t.Errorf("covered %q, want %q", r.Verified.Components, tc.components)
			}
			if r.Verified.KeyID != testKeyID || r.Verified.Version != 15 {
				t.Errorf("keyid %q version %d", r.Verified.KeyID, r.Verified.Version)
			}
			h := r.Header
			for k, want := range map[string]string{
				"Accept":                   "application/json",
				"Upvest-Client-Id":         testClientID,
				"Upvest-Api-Version":       "1",
				"Upvest-Signature-Version": "15",
				"Authorization":            "Bearer " + tokenName(1),
				"User-Agent":               DefaultUserAgent,
			} {
				if got := h.Values(k); len(got) != 1 || got[0] != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			creates := tc.method == "POST"
			if tc.body != "" {
				if got := h.Get("Content-Type"); got != "application/json" {
					t.Errorf("content-type %q", got)
				}
				if got := h.Get("Content-Length"); got != strconv.Itoa(len(tc.body)) {
					t.Errorf("content-length %q, want %d", got, len(tc.body))
				}
			} else if got := h.Get("Content-Type"); got != "" {
				t.Errorf("content-type %q on a request without body", got)
			}
			key := h.Values("Idempotency-Key")
			switch {
			case creates && (len(key) != 1 || uuid.Validate(key[0]) != nil):
				t.Errorf("idempotency-key %q, want one UUID", key)
			case creates && info.IdempotencyKey != key[0]:
				t.Errorf("ResponseInfo.IdempotencyKey %q, sent %q", info.IdempotencyKey, key)
			case !creates && (len(key) != 0 || info.IdempotencyKey != ""):
				t.Errorf("idempotency-key %q (info %q) on a %s", key, info.IdempotencyKey, tc.method)
			}
			if info.Attempts != 1 || info.StatusCode != tc.status || info.RequestID != requestID(1) {
				t.Errorf("ResponseInfo %+v", info)
			}
		})
	}
}

func TestIdempotencyKeyOption(t *testing.T) {
	f := newFakeUpstream(t)
	f.setAPI(func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, 201, `{"id":"x"}`) })
	c := f.client(t)
	const key = "5b0e1e36-3cbc-4b57-9d5f-4f0d3c1b6f40"
	var info ResponseInfo
	if _, err := c.CreateTopup(testContext(t), CreateTopupRequest{}, WithIdempotencyKey(key), WithResponseInfo(&info)); err != nil {
		t.Fatal(err)
	}
	if got := f.apiRequests()[0].Header.Get("Idempotency-Key"); got != key || info.IdempotencyKey != key {
		t.Errorf("sent %q, info %q, want %q", got, info.IdempotencyKey, key)
	}
	// Two calls without the option get two different keys.
	c.CreateTopup(testContext(t), CreateTopupRequest{})
	c.CreateTopup(testContext(t), CreateTopupRequest{})
	reqs := f.apiRequests()
	if a, b := reqs[1].Header.Get("Idempotency-Key"), reqs[2].Header.Get("Idempotency-Key"); a == b || a == key {
		t.Errorf("fresh keys %q and %q", a, b)
	}
}

// Refused before any request: an invalid argument never costs a round trip.
func TestInvalidArguments(t *testing.T) {
	f := newFakeUpstream(t)
	c := f.client(t)
	ctx := testContext(t)
	var info ResponseInfo
	calls := map[string]func() error{
		"bad key": func() error {
			_, err := c.CreateTopup(ctx, CreateTopupRequest{}, WithIdempotencyKey("not-a-uuid"), WithResponseInfo(&info))
			return err
		},
		"empty id":      func() error { _, err := c.GetTopup(ctx, ""); return err },
		"dot-dot id":    func() error { return c.CancelWithdrawal(ctx, "..") },
		"empty group":   func() error { _, err := c.GetCashBalance(ctx, ""); return err },
		"limit":         func() error { _, err := c.ListTopups(ctx, agID, ListParams{Limit: 1001}); return err },
		"negative":      func() error { _, err := c.ListWithdrawals(ctx, agID, ListParams{Offset: -1}); return err },
		"retry policy":  func() error { _, err := c.GetTopup(ctx, "x", WithCallRetry(RetryPolicy{Multiplier: 0.5})); return err },
		"cancel no id ": func() error { return c.CancelVirtualCashDecrease(ctx, "") },
		"webhook no id": func() error { _, err := c.UpdateWebhook(ctx, "", UpdateWebhookRequest{}); return err },
		"delete dot":    func() error { return c.DeleteWebhook(ctx, ".") },
		"webhook limit": func() error { _, err := c.ListWebhooks(ctx, ListParams{Limit: -1}); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
	if n := len(f.apiRequests()) + len(f.tokenRequests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

func TestGetVerifyKeys(t *testing.T) {
	f := newFakeUpstream(t)
	k1, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	j1, err := httpsig.NewJWK("k1", k1.Public())
	if err != nil {
		t.Fatal(err)
	}
	j2, _ := httpsig.NewJWK("k2", k2.Public())
	jwks, _ := json.Marshal(httpsig.JWKS{Keys: []httpsig.JWK{j1, j2}})
	f.setAPI(func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, 200, string(jwks)) })

	keys, err := f.client(t).GetVerifyKeys(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	for kid, want := range map[string]*ecdsa.PrivateKey{"k1": k1, "k2": k2} {
		got, ok := keys[kid].(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !got.Equal(want.Public()) {
			t.Errorf("key %s: %v", kid, keys[kid])
		}
	}
	r := f.apiRequests()[0]
	if r.Method != "GET" || r.Path != "/auth/verify_keys" || r.VerifyErr != nil || r.Header.Get("Idempotency-Key") != "" {
		t.Errorf("request %s %s verify=%v", r.Method, r.Path, r.VerifyErr)
	}
}

// Success bodies: unknown fields are fine (TestOperations), wrong types and
// oversize bodies are errors, and neither is retried.
func TestDecodeStrictness(t *testing.T) {
	cases := map[string]string{
		"wrong type":   `{"id":"x","cash_amount":200.00}`,
		"not json":     `<html>ok</html>`,
		"trailing":     `{"id":"x"} {"id":"y"}`,
		"empty":        ``,
		"huge (>10MB)": `{"id":"` + strings.Repeat("a", maxSuccessBody) + `"}`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFakeUpstream(t)
			f.setAPI(func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, 200, body) })
			var info ResponseInfo
			got, err := f.client(t, fastRetry).GetTopup(testContext(t), "x", WithResponseInfo(&info))
			if err == nil {
				t.Fatalf("decoded %+v", got)
			}
			if _, ok := AsError(err); ok || !errors.Is(err, ErrMalformedAnswer) {
				t.Errorf("err %v, want ErrMalformedAnswer and no *Error", err)
			}
			if len(f.apiRequests()) != 1 {
				t.Errorf("%d requests, want 1 (no retry)", len(f.apiRequests()))
			}
			if info.StatusCode != 200 || info.RequestID != requestID(1) {
				t.Errorf("ResponseInfo %+v", info)
			}
		})
	}
}
