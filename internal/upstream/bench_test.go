package upstream

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkCreateTopup tracks the client's per-call overhead: marshal, sign
// (P-256), one loopback round trip, decode. The server does no verification,
// so the numbers are the client's plus a minimal HTTP exchange.
func BenchmarkCreateTopup(b *testing.B) {
	answer := []byte(`{"id":"1ab4fef9-a097-4c6f-9345-647025d5fde6","created_at":"2020-08-24T14:15:22Z","account_group_id":"1ea60f56-b67b-61fc-829a-0242ac130003","cash_amount":"200.00","currency":"EUR","status":"CONFIRMED"}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Upvest-Request-Id", "169ae4c7-ebd7-4041-94da-25369653eba7")
		if r.URL.Path == "/auth/token" {
			io.WriteString(w, `{"access_token":"bench-token","expires_in":1799,"token_type":"bearer"}`)
			return
		}
		w.WriteHeader(http.StatusCreated)
		w.Write(answer)
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, ClientID: testClientID, ClientSecret: testSecret, Signer: testSigner(b)})
	if err != nil {
		b.Fatal(err)
	}
	in := CreateTopupRequest{AccountGroupID: "1ea60f56-b67b-61fc-829a-0242ac130003", CashAmount: "200.00", Currency: "EUR"}
	ctx := b.Context()
	if _, err := c.CreateTopup(ctx, in); err != nil { // warm the token and the connection
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.CreateTopup(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}
