package server_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"io"
	"log/slog"
	"net/http"
	"net/textproto"
	"strings"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/logtest"
	"github.com/upvest-gateway/gateway/internal/server"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
)

const dashboard = "http://dashboard.test:3000"

// TestCORS: only the configured origins get CORS answers; a preflight is
// answered; the ids a caller needs are readable; no credentials by default.
func TestCORS(t *testing.T) {
	t.Parallel()
	g := servertest.Start(t, servertest.WithServerOptions(server.WithCORS(server.CORS{AllowedOrigins: []string{dashboard}})))
	off := servertest.Start(t, servertest.WithoutEvents())
	ag := uuid.NewString()

	preflight := func(g *servertest.Gateway, origin string) *http.Response {
		t.Helper()
		res, _ := g.Do(t, http.MethodOptions, "/v1/payments/topups", "", http.Header{
			"Origin":                         {origin},
			"Access-Control-Request-Method":  {"POST"},
			"Access-Control-Request-Headers": {"content-type,idempotency-key"},
		})
		return res
	}
	res := preflight(g, dashboard)
	if res.StatusCode/100 != 2 || res.Header.Get("Access-Control-Allow-Origin") != dashboard ||
		!strings.Contains(strings.ToLower(res.Header.Get("Access-Control-Allow-Headers")), "idempotency-key") ||
		!strings.Contains(res.Header.Get("Access-Control-Allow-Methods"), "POST") {
		t.Errorf("preflight: %d %v", res.StatusCode, res.Header)
	}
	if res.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("credentials allowed by default: %v", res.Header)
	}
	if res := preflight(g, "http://elsewhere.test"); res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin allowed: %v", res.Header)
	}
	if res := preflight(off, dashboard); res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS without WithCORS: %v", res.Header)
	}

	// The call itself, and an error: the ids are exposed.
	for _, body := range []string{`{"account_group_id":"` + ag + `","cash_amount":"10.00","currency":"EUR"}`, `{"cash_amount":"x"}`} {
		res, b := g.Do(t, http.MethodPost, "/v1/payments/topups", body, http.Header{"Origin": {dashboard}, "Idempotency-Key": {uuid.NewString()}})
		exposed := strings.ToLower(res.Header.Get("Access-Control-Expose-Headers"))
		if res.Header.Get("Access-Control-Allow-Origin") != dashboard || !strings.Contains(exposed, "idempotency-key") || !strings.Contains(exposed, "upvest-request-id") {
			t.Errorf("%d %s: CORS headers %v", res.StatusCode, b, res.Header)
		}
	}
}

// grpcWebFrame is a gRPC-Web message frame.
func grpcWebFrame(m proto.Message) []byte {
	b, _ := proto.Marshal(m)
	frame := make([]byte, 5, 5+len(b))
	binary.BigEndian.PutUint32(frame[1:], uint32(len(b)))
	return append(frame, b...)
}

// readGRPCWeb splits a gRPC-Web answer into its message and its trailers.
func readGRPCWeb(t *testing.T, res *http.Response) (msg []byte, trailers http.Header) {
	t.Helper()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	trailers = http.Header{}
	for k, v := range res.Header { // a trailers-only answer has them as headers
		trailers[k] = v
	}
	for len(body) >= 5 {
		flag, n := body[0], binary.BigEndian.Uint32(body[1:5])
		data := body[5 : 5+n]
		body = body[5+n:]
		if flag&0x80 != 0 {
			tr, err := textproto.NewReader(bufioReader(string(data) + "\r\n")).ReadMIMEHeader()
			if err != nil && err != io.EOF {
				t.Fatalf("trailers %q: %v", data, err)
			}
			for k, v := range tr {
				trailers[k] = v
			}
			continue
		}
		msg = data
	}
	return msg, trailers
}

// TestGRPCWeb: a gRPC-Web call on the HTTP listener is a gRPC call: same
// answer, same interceptors (the request log), same errors.
func TestGRPCWeb(t *testing.T) {
	t.Parallel()
	var logs logtest.Buffer
	g := servertest.Start(t, servertest.WithoutEvents(),
		servertest.WithServerOptions(server.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil)))))
	call := func(req proto.Message, contentType string) *http.Response {
		t.Helper()
		r, _ := http.NewRequest(http.MethodPost, g.BaseURL+"/upvest.gateway.v1.TopupService/CreateTopup", bytes.NewReader(grpcWebFrame(req)))
		r.Header.Set("Content-Type", contentType)
		r.Header.Set("X-Grpc-Web", "1")
		res, err := g.HTTP.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}

	ag := uuid.NewString()
	res := call(&gatewayv1.CreateTopupRequest{RequestId: uuid.NewString(), AccountGroupId: ag, CashAmount: "25.00", Currency: "EUR"}, "application/grpc-web+proto")
	msg, tr := readGRPCWeb(t, res)
	var out gatewayv1.CreateTopupResponse
	if res.StatusCode != http.StatusOK || tr.Get("Grpc-Status") != "0" || proto.Unmarshal(msg, &out) != nil ||
		out.GetTopup().GetAccountGroupId() != ag || out.GetTopup().GetCashAmount() != "25.00" {
		t.Fatalf("CreateTopup over gRPC-Web: %d %v %v", res.StatusCode, tr, &out)
	}
	if res.Header.Get("Idempotency-Key") == "" {
		t.Errorf("no idempotency-key header: %v", res.Header)
	}
	if !strings.Contains(logs.String(), `"method":"/upvest.gateway.v1.TopupService/CreateTopup"`) {
		t.Errorf("the call did not pass the request log:\n%s", logs.String())
	}

	res = call(&gatewayv1.CreateTopupRequest{RequestId: uuid.NewString(), AccountGroupId: "x", CashAmount: "1", Currency: "EUR"}, "application/grpc-web+proto")
	if _, tr := readGRPCWeb(t, res); tr.Get("Grpc-Status") != "3" || !strings.Contains(tr.Get("Grpc-Message"), "account_group_id") {
		t.Errorf("invalid request over gRPC-Web: %d %v", res.StatusCode, tr)
	}

	// Not gRPC-Web: refused, and the admin services are not there at all.
	r, _ := http.NewRequest(http.MethodPost, g.BaseURL+"/upvest.gateway.v1.TopupService/CreateTopup", strings.NewReader("{}"))
	r.Header.Set("Content-Type", "application/json")
	if res, err := g.HTTP.Do(r); err != nil || res.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("Connect/JSON on the gRPC-Web route: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	r, _ = http.NewRequest(http.MethodPost, g.BaseURL+"/upvest.gateway.admin.v1.EventQuarantineService/ListQuarantined", bytes.NewReader([]byte{0, 0, 0, 0, 0}))
	r.Header.Set("Content-Type", "application/grpc-web+proto")
	if res, err := g.HTTP.Do(r); err != nil || res.StatusCode != http.StatusNotFound {
		t.Errorf("an admin service over gRPC-Web: %v %v", res, err)
	} else {
		res.Body.Close()
	}
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }

// TestGRPCWebCallers: gRPC-Web calls pass the caller checks of every other
// call: no certificate, no call; the policy decides what a certificate's
// identity may do.
func TestGRPCWebCallers(t *testing.T) {
	t.Parallel()
	g := startSecure(t, true)
	call := func(cert *tls.Certificate, method string, req proto.Message) http.Header {
		t.Helper()
		r, _ := http.NewRequest(http.MethodPost, g.BaseURL+"/upvest.gateway.v1."+method, bytes.NewReader(grpcWebFrame(req)))
		r.Header.Set("Content-Type", "application/grpc-web+proto")
		res, err := g.restClient(cert).Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		_, tr := readGRPCWeb(t, res)
		return tr
	}
	balance := &gatewayv1.GetCashBalanceRequest{AccountGroupId: g.ag}
	if tr := call(nil, "CashBalanceService/GetCashBalance", balance); tr.Get("Grpc-Status") != "16" {
		t.Errorf("without a certificate: %v, want UNAUTHENTICATED (16)", tr)
	}
	dashboard := g.ca.Client(t, "balance-dashboard")
	if tr := call(&dashboard.TLS, "CashBalanceService/GetCashBalance", balance); tr.Get("Grpc-Status") != "0" {
		t.Errorf("the dashboard's balance read: %v", tr)
	}
	topup := &gatewayv1.CreateTopupRequest{RequestId: uuid.NewString(), AccountGroupId: g.ag, CashAmount: "1.00", Currency: "EUR"}
	if tr := call(&dashboard.TLS, "TopupService/CreateTopup", topup); tr.Get("Grpc-Status") != "7" {
		t.Errorf("the dashboard creating a top-up: %v, want PERMISSION_DENIED (7)", tr)
	}
}
