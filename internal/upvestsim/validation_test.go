package upvestsim_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/upvest-gateway/gateway/internal/upvestsim/simtest"
)

// with returns a copy of body with field set (or removed when value is nil).
func with(body map[string]string, field string, value any) map[string]any {
	out := map[string]any{}
	for k, v := range body {
		out[k] = v
	}
	if value == nil {
		delete(out, field)
	} else {
		out[field] = value
	}
	return out
}

func TestBodyValidation(t *testing.T) {
	e := newEnv(t)
	type bad struct {
		name  string
		body  any
		field string // the detail must name it
	}
	amountCases := func(base map[string]string, field string) []bad {
		var out []bad
		for _, v := range []string{"1.5", "1.234", "1234567890", "-1", "1e3", " 1", "1,00", "", "0", "0.00", ".50"} {
			out = append(out, bad{"amount " + v, with(base, field, v), field})
		}
		return append(out,
			bad{"amount missing", with(base, field, nil), field},
			bad{"amount as number", with(base, field, 10), field},
			bad{"amount null", with(base, field, json.RawMessage("null")), field},
		)
	}
	uuidCases := func(base map[string]string, fields ...string) []bad {
		var out []bad
		for _, f := range fields {
			out = append(out,
				bad{f + " not a uuid", with(base, f, "2596db3b-0d03-4651-9eda-970910479dfbx"), f},
				bad{f + " missing", with(base, f, nil), f})
		}
		return out
	}
	remittanceCases := func(base map[string]string) []bad {
		return []bad{
			{"remittance umlaut", with(base, "remittance_information", "Grüße"), "remittance_information"},
			{"remittance too long", with(base, "remittance_information", strings.Repeat("a", 141)), "remittance_information"},
			{"remittance angle bracket", with(base, "remittance_information", "<script>"), "remittance_information"},
			{"remittance newline", with(base, "remittance_information", "a\nb"), "remittance_information"},
		}
	}
	currencyCases := func(base map[string]string) []bad {
		return []bad{
			{"currency USD", with(base, "currency", "USD"), "currency"},
			{"currency lower case", with(base, "currency", "eur"), "currency"},
			{"currency missing", with(base, "currency", nil), "currency"},
		}
	}
	common := func(base map[string]string) []bad {
		return []bad{
			{"unknown field", with(base, "note", "x"), "note"},
			{"unknown field status", with(base, "status", "CONFIRMED"), "status"},
		}
	}
	ops := []struct {
		path  string
		cases []bad
	}{
		{"/virtual_cash_balances/increases", concat(common(virtualCash(group1, "1.00")), amountCases(virtualCash(group1, "1.00"), "amount"), uuidCases(virtualCash(group1, "1.00"), "account_group_id"), currencyCases(virtualCash(group1, "1.00")))},
		{"/virtual_cash_balances/decreases", concat(common(virtualCash(group1, "1.00")), amountCases(virtualCash(group1, "1.00"), "amount"), currencyCases(virtualCash(group1, "1.00")))},
		{"/payments/topups", concat(common(topup(group1, "1.00")), amountCases(topup(group1, "1.00"), "cash_amount"), uuidCases(topup(group1, "1.00"), "account_group_id"), currencyCases(topup(group1, "1.00")))},
		{"/payments/direct_debits", concat(common(directDebit(group1, "1.00")), amountCases(directDebit(group1, "1.00"), "cash_amount"),
			uuidCases(directDebit(group1, "1.00"), "user_id", "account_group_id", "mandate_id"), remittanceCases(directDebit(group1, "1.00")),
			[]bad{{"currency is not a field", with(directDebit(group1, "1.00"), "currency", "EUR"), "currency"}})},
		{"/payments/withdrawals", concat(common(withdrawal(group1, "1.00")), amountCases(withdrawal(group1, "1.00"), "amount"),
			uuidCases(withdrawal(group1, "1.00"), "reference_account_id", "account_group_id", "user_id"), remittanceCases(withdrawal(group1, "1.00")))},
	}
	for _, op := range ops {
		for _, tc := range op.cases {
			t.Run(op.path+"/"+tc.name, func(t *testing.T) {
				wantProblem(t, e.post(t, op.path, tc.body), http.StatusBadRequest, "bad_request", tc.field)
			})
		}
	}
	if n := len(e.sim.Events()); n != 0 {
		t.Fatalf("invalid requests emitted %d events: %v", n, eventTypes(e.sim))
	}
}

func concat[T any](parts ...[]T) []T {
	var out []T
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestMalformedBodies(t *testing.T) {
	e := newEnv(t)
	valid := string(mustJSON(t, topup(group1, "1.00")))
	for _, tc := range []struct {
		name, body, contentType, detail string
	}{
		{"not json", "account_group_id=x", "", "JSON"},
		{"truncated", valid[:len(valid)-3], "", "JSON"},
		{"array", `[` + valid + `]`, "", "object"},
		{"trailing data", valid + `{}`, "", "after"},
		{"empty object", `{}`, "", "account_group_id"},
		{"form content type", valid, "application/x-www-form-urlencoded", "content-type"},
		{"text content type", valid, "text/plain", "content-type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := []simtest.Option{}
			if tc.contentType != "" {
				opts = append(opts, simtest.Header("Content-Type", tc.contentType))
			}
			wantProblem(t, e.post(t, "/payments/topups", tc.body, opts...), http.StatusBadRequest, "bad_request", tc.detail)
		})
	}
	t.Run("no body", func(t *testing.T) {
		wantProblem(t, e.post(t, "/payments/topups", []byte(nil)), http.StatusBadRequest, "bad_request", "body")
	})
	// Valid edge values are accepted.
	for _, amount := range []string{"1", "999999999", "999999999.99", "0.01"} {
		want(t, e.post(t, "/payments/topups", topup(group1, amount)), http.StatusCreated)
	}
	want(t, e.post(t, "/payments/direct_debits", with(directDebit(group1, "1.00"), "remittance_information", strings.Repeat("Az09+?/-:().,'; ", 10)[:140])), http.StatusCreated)
	want(t, e.post(t, "/payments/direct_debits", with(directDebit(group1, "1.00"), "remittance_information", nil)), http.StatusCreated)
}

func TestRouting(t *testing.T) {
	e := newEnv(t)
	wantProblem(t, e.get(t, "/payments/unknown"), http.StatusNotFound, "not_found")
	wantProblem(t, e.get(t, "/payments/topups/"), http.StatusNotFound, "not_found")
	r := e.c.Do(t, http.MethodPut, "/payments/topups", nil, simtest.Token(e.tok))
	wantProblem(t, r, http.StatusMethodNotAllowed, "method_not_allowed")
	if r.Header.Get("Allow") != "POST" {
		t.Fatalf("Allow %q", r.Header.Get("Allow"))
	}
	wantProblem(t, e.del(t, "/payments/direct_debits/"+group1), http.StatusMethodNotAllowed, "method_not_allowed")
	wantProblem(t, e.get(t, "/payments/topups/not-a-uuid"), http.StatusBadRequest, "bad_request", "topup_id")
	for _, p := range []string{"/payments/topups/", "/payments/direct_debits/", "/payments/withdrawals/"} {
		wantProblem(t, e.get(t, p+group1), http.StatusNotFound, "not_found", group1)
	}
	for _, p := range []string{"/payments/topups/", "/payments/withdrawals/", "/virtual_cash_balances/decreases/"} {
		wantProblem(t, e.del(t, p+group1), http.StatusNotFound, "not_found", group1)
	}
	wantProblem(t, e.get(t, "/account_groups/"+group1+"/payments/cash_balance?currency=EUR"), http.StatusBadRequest, "bad_request", "query")
}

func TestListPaging(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for range 5 {
		ids = append(ids, e.create(t, "/payments/topups", topup(group1, "1.00")))
	}
	e.create(t, "/payments/topups", topup(group2, "1.00"))
	type list struct {
		Meta struct {
			Offset     int    `json:"offset"`
			Limit      int    `json:"limit"`
			Count      int    `json:"count"`
			TotalCount int    `json:"total_count"`
			Sort       string `json:"sort"`
			Order      string `json:"order"`
		} `json:"meta"`
		Data []struct {
			ID             string `json:"id"`
			AccountGroupID string `json:"account_group_id"`
		} `json:"data"`
	}
	get := func(query string) list {
		t.Helper()
		r := e.get(t, "/account_groups/"+group1+"/payments/topups"+query)
		want(t, r, http.StatusOK)
		var l list
		if err := r.JSON(&l); err != nil || !strings.Contains(string(r.Body), `"data":[`) {
			t.Fatalf("list %s: %v", r.Body, err)
		}
		return l
	}
	l := get("")
	if l.Meta.Limit != 100 || l.Meta.Offset != 0 || l.Meta.Count != 5 || l.Meta.TotalCount != 5 || l.Meta.Sort != "created_at" || l.Meta.Order != "ASC" {
		t.Fatalf("default meta %+v", l.Meta)
	}
	for i, d := range l.Data {
		if d.ID != ids[i] || d.AccountGroupID != group1 {
			t.Fatalf("item %d is %+v, want %s of %s", i, d, ids[i], group1)
		}
	}
	l = get("?order=DESC&limit=2&offset=1")
	if l.Meta.Count != 2 || l.Meta.TotalCount != 5 || l.Data[0].ID != ids[3] || l.Data[1].ID != ids[2] {
		t.Fatalf("DESC page %+v", l)
	}
	l = get("?sort=id&limit=0")
	if l.Meta.Count != 0 || len(l.Data) != 0 || l.Meta.TotalCount != 5 || l.Meta.Sort != "id" {
		t.Fatalf("limit 0 page %+v", l)
	}
	l = get("?sort=id")
	for i := 1; i < len(l.Data); i++ {
		if l.Data[i-1].ID > l.Data[i].ID {
			t.Fatalf("not sorted by id: %+v", l.Data)
		}
	}
	l = get("?offset=10&limit=")
	if l.Meta.Count != 0 || l.Meta.Limit != 100 {
		t.Fatalf("offset past the end %+v", l)
	}
	if r := e.get(t, "/account_groups/"+group2+"/payments/withdrawals"); r.Status != 200 || !strings.Contains(string(r.Body), `"data":[]`) {
		t.Fatalf("empty list %d %s", r.Status, r.Body)
	}
	for _, q := range []string{"limit=1001", "limit=-1", "limit=x", "offset=-1", "offset=1.5", "sort=amount", "order=asc", "page=2", "limit=1&limit=2", "sort=id;order=ASC"} {
		wantProblem(t, e.get(t, "/account_groups/"+group1+"/payments/topups?"+q), http.StatusBadRequest, "bad_request")
	}
}
