package upvestsim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/upvest-gateway/gateway/internal/upvestsim"
	"github.com/upvest-gateway/gateway/internal/upvestsim/simtest"
)

// control calls a /_sim/ endpoint with plain, unsigned HTTP, as a program in
// another language would.
func (e *env) control(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+"/_sim/"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

func TestControlEndpoints(t *testing.T) {
	e := newEnv(t)
	key := newKey()
	want(t, e.post(t, "/payments/direct_debits", directDebit(group1, "4.00"), simtest.IdempotencyKey(key)), http.StatusCreated)

	status, body := e.control(t, http.MethodGet, "effects?idempotency_key="+key, "")
	if status != 200 || !strings.Contains(string(body), `"effects":1`) {
		t.Fatalf("effects: %d %s", status, body)
	}
	if status, _ := e.control(t, http.MethodPost, "advance", ""); status != http.StatusNoContent {
		t.Fatalf("advance: %d", status)
	}
	status, body = e.control(t, http.MethodGet, "events", "")
	var events []upvestsim.Event
	if err := json.Unmarshal(body, &events); status != 200 || err != nil || len(events) != 2 || events[1].Type != "DIRECT_DEBIT.PROCESSING" {
		t.Fatalf("events: %d %s", status, body)
	}
	status, body = e.control(t, http.MethodGet, "requests", "")
	var reqs []upvestsim.RequestRecord
	if err := json.Unmarshal(body, &reqs); status != 200 || err != nil || len(reqs) != 2 || reqs[1].IdempotencyKey != key || reqs[1].Status != 201 || reqs[1].KeyID != testKeyID || reqs[1].Header.Get("Authorization") != "[redacted]" {
		t.Fatalf("requests: %d %s", status, body)
	}
	if status, body := e.control(t, http.MethodGet, "token_requests", ""); status != 200 || string(body) != `{"token_requests":1}` {
		t.Fatalf("token_requests: %d %s", status, body)
	}
	if status, body := e.control(t, http.MethodGet, "healthz", ""); status != 200 || string(body) != `{"status":"SERVING"}` {
		t.Fatalf("healthz: %d %s", status, body)
	}
	if status, body := e.control(t, http.MethodGet, "webhook_key", ""); status != 200 || !strings.Contains(string(body), e.sim.WebhookKeyID()) {
		t.Fatalf("webhook_key: %d %s", status, body)
	}

	// Faults over HTTP.
	if status, body := e.control(t, http.MethodPost, "faults", `{"kind":"504","method":"GET","path_prefix":"/account_groups/","count":1,"delay":"50ms"}`); status != http.StatusNoContent {
		t.Fatalf("faults: %d %s", status, body)
	}
	start := time.Now()
	wantProblem(t, e.get(t, "/account_groups/"+group1+"/payments/cash_balance"), http.StatusGatewayTimeout, "gateway_timeout")
	if time.Since(start) < 50*time.Millisecond {
		t.Fatal("504 came before its delay")
	}
	for _, bad := range []string{`{"kind":"418"}`, `{"kind":"500","delay":"soon"}`, `{"kind":"500","count":-1}`, `{"kind":"500","extra":1}`, `not json`} {
		if status, body := e.control(t, http.MethodPost, "faults", bad); status != http.StatusBadRequest {
			t.Fatalf("faults %s: %d %s", bad, status, body)
		}
	}

	// Balances.
	status, body = e.control(t, http.MethodPut, "cash_balance", `{"account_group_id":"`+group2+`","balance":"10.5","available_for_withdrawal":"10.5"}`)
	if status != 200 || !strings.Contains(string(body), `"balance":"10.5"`) {
		t.Fatalf("set balance: %d %s", status, body)
	}
	status, body = e.control(t, http.MethodGet, "cash_balance?account_group_id="+group2, "")
	if status != 200 || !strings.Contains(string(body), `"available_for_withdrawal":"10.5"`) {
		t.Fatalf("get balance: %d %s", status, body)
	}
	if status, _ := e.control(t, http.MethodPut, "cash_balance", `{"account_group_id":"`+group2+`","balance":"abc"}`); status != http.StatusBadRequest {
		t.Fatalf("bad balance accepted: %d", status)
	}

	// Pause.
	if status, _ := e.control(t, http.MethodPost, "pause_webhooks", `{"paused":true}`); status != http.StatusNoContent {
		t.Fatalf("pause: %d", status)
	}
	if status, _ := e.control(t, http.MethodPost, "pause_webhooks", `{}`); status != http.StatusBadRequest {
		t.Fatalf("pause without paused: %d", status)
	}
	if status, body := e.control(t, http.MethodGet, "deliveries", ""); status != 200 || string(body) != "[]" {
		t.Fatalf("deliveries: %d %s", status, body)
	}
	if status, _ := e.control(t, http.MethodGet, "nothing", ""); status != http.StatusNotFound {
		t.Fatalf("unknown endpoint: %d", status)
	}
	if status, _ := e.control(t, http.MethodDelete, "events", ""); status != http.StatusMethodNotAllowed {
		t.Fatalf("wrong method: %d", status)
	}
}
