package service

import "testing"

func TestUpstreamField(t *testing.T) {
	t.Parallel()
	tests := []struct{ detail, want string }{
		{"field cash_amount: JSON number where a string was expected", "cash_amount"},
		{`unknown field "cash_amont"`, ""},
		{`unknown field "currency"`, "currency"},
		{`limit: "x" is not an integer in 0..1000`, "page_size"},
		{`sort: "amount" is not one of [id created_at]`, "order_by"},
		{`unknown query parameter "page"`, ""},
		{"path parameter account_group_id: \"x\" is not a UUID", "account_group_id"},
		{"idempotency-key \"x\" is not a UUID", ""},
		{"the idempotency-key header is required", ""},
		{"in order to proceed, the amount must be positive", ""},
		{"amount: must be positive", "amount"},
		{"missing required field remittance_information", "remittance_information"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := upstreamField(tc.detail); got != tc.want {
			t.Errorf("upstreamField(%q) = %q, want %q", tc.detail, got, tc.want)
		}
	}
}

func FuzzUpstreamField(f *testing.F) {
	for _, s := range []string{"field cash_amount: x", `limit: "x"`, "", `parameter "sort"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, detail string) {
		if got := upstreamField(detail); got != "" && !requestFields()[got] {
			t.Errorf("upstreamField(%q) = %q, not a request field", detail, got)
		}
	})
}
