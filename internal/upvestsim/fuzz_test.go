package upvestsim

import (
	"encoding/json"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"testing"

	apiproblem "github.com/upvest-gateway/gateway/internal/problem"
)

// Fuzz tests for every parser of outside input: request bodies, paging
// parameters, decimals, token forms, accept headers, paths and the
// simulator's own fault requests.

func FuzzDecodeBodies(f *testing.F) {
	for _, s := range []string{
		`{"account_group_id":"2596db3b-0d03-4651-9eda-970910479dfb","amount":"200.00","currency":"EUR"}`,
		`{"account_group_id":"2596db3b-0d03-4651-9eda-970910479dfb","cash_amount":"1","currency":"EUR"}`,
		`{"user_id":"b668282b-cdf3-439a-bda2-3f3c9f655bb7","account_group_id":"2596db3b-0d03-4651-9eda-970910479dfb","mandate_id":"730b8719-0bc6-401d-98dd-b2de72afbf05","cash_amount":"5.00","remittance_information":"x"}`,
		`{"reference_account_id":"295378ec-036e-4f3f-ae5c-2be85c93e837","account_group_id":"2596db3b-0d03-4651-9eda-970910479dfb","user_id":"b668282b-cdf3-439a-bda2-3f3c9f655bb7","amount":"999999999.99"}`,
		`{"title":"t","url":"https://example.com/x","type":["TOPUP"],"config":{"delay":"5s","max_package_size":100}}`,
		`{"enabled":true}`,
		`{"kind":"504","delay":"1s","count":2}`,
		`{}`, `[]`, `null`, `{"amount":1}`, `{"a":"b"}{}`, "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		const ct = "application/json"
		if req, p := decodeRequest[virtualCashRequest](ct, []byte(body)); p == nil {
			checkUUID(t, *req.AccountGroupID)
			checkAmount(t, *req.Amount)
			if !isSupportedCurrency(*req.Currency) {
				t.Fatalf("accepted currency %q", *req.Currency)
			}
		} else if p.status != http.StatusBadRequest {
			t.Fatalf("status %d", p.status)
		}
		if req, p := decodeRequest[topupRequest](ct, []byte(body)); p == nil {
			checkUUID(t, *req.AccountGroupID)
			checkAmount(t, *req.CashAmount)
		}
		if req, p := decodeRequest[directDebitRequest](ct, []byte(body)); p == nil {
			checkUUID(t, *req.UserID)
			checkUUID(t, *req.MandateID)
			checkAmount(t, *req.CashAmount)
			if r := deref(req.RemittanceInformation); len(r) > 140 || strings.ContainsAny(r, "<>\n\"") {
				t.Fatalf("accepted remittance %q", r)
			}
		}
		if req, p := decodeRequest[withdrawalRequest](ct, []byte(body)); p == nil {
			checkUUID(t, *req.ReferenceAccountID)
			checkAmount(t, *req.Amount)
		}
		if req, p := decodeRequest[webhookCreate](ct, []byte(body)); p == nil {
			if req.Title == nil || req.URL == nil || checkWebhookURL(*req.URL) != nil {
				t.Fatalf("accepted webhook %+v", req)
			}
		}
		if req, p := decodeRequest[webhookRequest](ct, []byte(body)); p == nil {
			for _, c := range req.Type {
				if !slices.Contains(webhookCategories, c) {
					t.Fatalf("accepted category %q", c)
				}
			}
		}
		if f, p := parseFaultRequest(ct, []byte(body)); p == nil && (!f.Kind.valid() || f.Delay < 0 || f.Count < 0) {
			t.Fatalf("accepted fault %+v", f)
		}
	})
}

func checkUUID(t *testing.T, s string) {
	t.Helper()
	if !uuidPattern.MatchString(s) || s != strings.ToLower(s) {
		t.Fatalf("accepted id %q", s)
	}
}

func checkAmount(t *testing.T, s string) {
	t.Helper()
	v, err := parseDecimal(s)
	if !amountPattern.MatchString(s) || err != nil || v.Sign() <= 0 {
		t.Fatalf("accepted amount %q", s)
	}
}

func FuzzListParams(f *testing.F) {
	for _, s := range []string{"", "sort=id&order=DESC&limit=5&offset=10", "limit=", "limit=1001", "offset=-1", "sort=x", "a=b", "limit=1&limit=2", "%zz", "limit=+7"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		p, prob := parseListParams(q, paymentSorts)
		if prob != nil {
			if prob.status != http.StatusBadRequest {
				t.Fatalf("status %d", prob.status)
			}
			return
		}
		if p.limit < 0 || p.limit > maxLimit || p.offset < 0 || !slices.Contains(paymentSorts, p.sort) || (p.order != "ASC" && p.order != "DESC") {
			t.Fatalf("accepted %q as %+v", q, p)
		}
		items := []int{3, 1, 2}
		page := paginate(items, p, sortKeys[int]{"id": func(a, b int) int { return a - b }, "created_at": func(a, b int) int { return a - b }})
		if page.Meta.Count != len(page.Data) || page.Meta.Count > p.limit || page.Meta.TotalCount != 3 || page.Data == nil {
			t.Fatalf("page %+v for %+v", page, p)
		}
	})
}

func FuzzDecimal(f *testing.F) {
	for _, s := range []string{"0", "-0", "100.25", "-5.5", ".5", "1.000000000000000000000000001", "999999999.99", "", "-", ".", "00012.3400"} {
		f.Add(s)
	}
	scale := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(decimalScale), nil))
	f.Fuzz(func(t *testing.T, s string) {
		if !balancePattern.MatchString(s) {
			return
		}
		v, err := parseDecimal(s)
		if err != nil {
			if strings.ContainsAny(s, "0123456789") {
				t.Fatalf("parseDecimal(%q): %v", s, err)
			}
			return
		}
		// The value is exactly the decimal's.
		want, ok := new(big.Rat).SetString(strings.Replace(s, "-.", "-0.", 1))
		if strings.HasPrefix(s, ".") {
			want, ok = new(big.Rat).SetString("0" + s)
		}
		if !ok || new(big.Rat).Quo(new(big.Rat).SetInt(v), scale).Cmp(want) != 0 {
			t.Fatalf("parseDecimal(%q) = %v", s, v)
		}
		// Rendering is canonical and round-trips.
		out := formatDecimal(v)
		if !balancePattern.MatchString(out) || out == "-0" || strings.HasSuffix(out, ".") || (strings.Contains(out, ".") && strings.HasSuffix(out, "0")) {
			t.Fatalf("formatDecimal(%q) = %q", s, out)
		}
		back, err := parseDecimal(out)
		if err != nil || back.Cmp(v) != 0 {
			t.Fatalf("%q → %q → %v", s, out, back)
		}
	})
}

func FuzzTokenForm(f *testing.F) {
	f.Add("application/x-www-form-urlencoded", "grant_type=client_credentials&client_id=a&client_secret=b&scope=topups%3Aread")
	f.Add("application/x-www-form-urlencoded", "grant_type=x&grant_type=y")
	f.Add("application/json", "{}")
	f.Add("application/x-www-form-urlencoded; charset=utf-8", "%%")
	f.Fuzz(func(t *testing.T, ct, body string) {
		form, p := parseTokenForm(ct, []byte(body))
		if p != nil {
			return
		}
		if len(form) != len(tokenFormFields) {
			t.Fatalf("form %v", form)
		}
		for _, k := range tokenFormFields {
			if form[k] == "" {
				t.Fatalf("accepted form without %s: %q", k, body)
			}
		}
	})
}

func FuzzAccept(f *testing.F) {
	for _, s := range []string{"", "application/json", "text/html", "*/*;q=0", "application/json;q=0.0, text/*", "application/*;q=x", ";;,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		_ = acceptsJSON(accept)
		if !acceptsJSON(accept + ", application/json") {
			t.Fatalf("%q plus application/json refused", accept)
		}
	})
}

func FuzzMatch(f *testing.F) {
	for _, s := range []string{"/payments/topups", "/payments/topups/x", "/account_groups/a/payments/cash_balance", "//", "/webhooks/x/test", ""} {
		f.Add("GET", s)
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		rt, params, allowed := match(method, path)
		if rt == nil {
			for _, m := range allowed {
				if m == method {
					t.Fatalf("%s %s: allowed but not matched", method, path)
				}
			}
			return
		}
		if rt.method != method || len(allowed) != 0 {
			t.Fatalf("%s %s matched %s %s", method, path, rt.method, rt.pattern)
		}
		for name, v := range params {
			if v == "" || strings.Contains(v, "/") {
				t.Fatalf("%s %s: param %s = %q", method, path, name, v)
			}
		}
	})
}

// Problem bodies are valid JSON whatever the detail holds.
func FuzzProblem(f *testing.F) {
	f.Add("detail with \"quotes\" and \x00")
	f.Fuzz(func(t *testing.T, detail string) {
		rep := badRequest("%s", detail).reply("id")
		var p apiproblem.Details
		if err := json.Unmarshal(rep.body, &p); err != nil || p.Status != 400 {
			t.Fatalf("problem body %s: %v", rep.body, err)
		}
	})
}
