package upvestsim

import (
	"net/http"
	"strings"
)

// idempotency says what a route does with the idempotency-key header.
type idempotency int

const (
	idemNone     idempotency = iota // the header is ignored (but signed when sent)
	idemRequired                    // creating POST: missing key → 400
	idemOptional                    // honoured when sent (POST /webhooks)
)

// route is one upstream operation: what it requires of a request and the
// handler doing the work once every check has passed.
type route struct {
	method  string
	pattern string
	segs    []string
	public  bool     // no bearer token (POST /auth/token)
	scopes  []string // any one suffices
	idem    idempotency
	sorts   []string // list routes: the sort fields; nil: no query allowed
	handle  func(s *Sim, c *call) (*reply, error)
}

// Sort fields of the list operations.
var (
	paymentSorts = []string{"created_at", "id"}
	webhookSorts = []string{"created_at", "updated_at", "title", "url", "enabled"}
)

// routes lists the upstream operations the simulator serves, with their
// scopes as the API reference gives them.
var routes = buildRoutes([]route{
	{method: http.MethodPost, pattern: "/auth/token", public: true, handle: (*Sim).issueToken},
	{method: http.MethodGet, pattern: "/auth/verify_keys", scopes: []string{"webhooks:read", "webhooks:admin"}, handle: (*Sim).verifyKeys},

	{method: http.MethodPost, pattern: "/virtual_cash_balances/increases", scopes: []string{"virtual_cash_balances:admin"}, idem: idemRequired, handle: (*Sim).createVirtualCashIncrease},
	{method: http.MethodPost, pattern: "/virtual_cash_balances/decreases", scopes: []string{"virtual_cash_balances:admin"}, idem: idemRequired, handle: (*Sim).createVirtualCashDecrease},
	{method: http.MethodDelete, pattern: "/virtual_cash_balances/decreases/{virtual_cash_decrease_id}", scopes: []string{"virtual_cash_balances:admin"}, handle: (*Sim).cancelVirtualCashDecrease},

	{method: http.MethodGet, pattern: "/account_groups/{account_group_id}/payments/topups", scopes: []string{"topups:read", "topups:admin"}, sorts: paymentSorts, handle: (*Sim).listTopups},
	{method: http.MethodPost, pattern: "/payments/topups", scopes: []string{"topups:admin"}, idem: idemRequired, handle: (*Sim).createTopup},
	{method: http.MethodGet, pattern: "/payments/topups/{topup_id}", scopes: []string{"topups:read", "topups:admin"}, handle: (*Sim).getTopup},
	{method: http.MethodDelete, pattern: "/payments/topups/{topup_id}", scopes: []string{"topups:admin"}, handle: (*Sim).cancelTopup},

	{method: http.MethodGet, pattern: "/account_groups/{account_group_id}/payments/direct_debits", scopes: []string{"payments:read", "payments:admin"}, sorts: paymentSorts, handle: (*Sim).listDirectDebits},
	{method: http.MethodPost, pattern: "/payments/direct_debits", scopes: []string{"payments:admin"}, idem: idemRequired, handle: (*Sim).createDirectDebit},
	{method: http.MethodGet, pattern: "/payments/direct_debits/{direct_debit_id}", scopes: []string{"payments:read", "payments:admin"}, handle: (*Sim).getDirectDebit},

	{method: http.MethodGet, pattern: "/account_groups/{account_group_id}/payments/withdrawals", scopes: []string{"payments:read", "payments:admin"}, sorts: paymentSorts, handle: (*Sim).listWithdrawals},
	{method: http.MethodPost, pattern: "/payments/withdrawals", scopes: []string{"payments:admin"}, idem: idemRequired, handle: (*Sim).createWithdrawal},
	{method: http.MethodGet, pattern: "/payments/withdrawals/{withdrawal_id}", scopes: []string{"payments:read", "payments:admin"}, handle: (*Sim).getWithdrawal},
	{method: http.MethodDelete, pattern: "/payments/withdrawals/{withdrawal_id}", scopes: []string{"payments:admin"}, handle: (*Sim).cancelWithdrawal},

	{method: http.MethodGet, pattern: "/account_groups/{account_group_id}/payments/cash_balance", scopes: []string{"positions:read"}, handle: (*Sim).getCashBalance},

	{method: http.MethodGet, pattern: "/webhooks", scopes: []string{"webhooks:read", "webhooks:admin"}, sorts: webhookSorts, handle: (*Sim).listWebhooks},
	{method: http.MethodPost, pattern: "/webhooks", scopes: []string{"webhooks:admin"}, idem: idemOptional, handle: (*Sim).createWebhook},
	{method: http.MethodGet, pattern: "/webhooks/{webhook_id}", scopes: []string{"webhooks:read", "webhooks:admin"}, handle: (*Sim).getWebhook},
	{method: http.MethodPatch, pattern: "/webhooks/{webhook_id}", scopes: []string{"webhooks:admin"}, handle: (*Sim).updateWebhook},
	{method: http.MethodDelete, pattern: "/webhooks/{webhook_id}", scopes: []string{"webhooks:admin"}, handle: (*Sim).deleteWebhook},
	{method: http.MethodPost, pattern: "/webhooks/{webhook_id}/test", scopes: []string{"webhooks:admin"}, handle: (*Sim).testWebhook},
})

func buildRoutes(rs []route) []route {
	for i := range rs {
		rs[i].segs = strings.Split(strings.TrimPrefix(rs[i].pattern, "/"), "/")
	}
	return rs
}

// match finds the route for method and path. When the path is known but the
// method is not, it returns the allowed methods instead, for a 405.
func match(method, path string) (rt *route, params map[string]string, allowed []string) {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for i := range routes {
		p, ok := matchSegs(routes[i].segs, segs)
		if !ok {
			continue
		}
		if routes[i].method == method {
			return &routes[i], p, nil
		}
		allowed = append(allowed, routes[i].method)
	}
	return nil, nil, allowed
}

func matchSegs(pattern, segs []string) (map[string]string, bool) {
	if len(pattern) != len(segs) {
		return nil, false
	}
	var params map[string]string
	for i, p := range pattern {
		if strings.HasPrefix(p, "{") {
			if segs[i] == "" {
				return nil, false
			}
			if params == nil {
				params = map[string]string{}
			}
			params[p[1:len(p)-1]] = segs[i]
			continue
		}
		if p != segs[i] {
			return nil, false
		}
	}
	return params, true
}
