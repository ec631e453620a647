package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/auth"
	"github.com/upvest-gateway/gateway/internal/server"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
	"github.com/upvest-gateway/gateway/internal/service"
	"github.com/upvest-gateway/gateway/internal/tlsconfig"
	"github.com/upvest-gateway/gateway/internal/tlsconfig/tlstest"
)

// runEventsT runs `gateway events quarantine args...` against the gateway
// at addr (GATEWAY_GRPC_ADDR).
func runEventsT(t *testing.T, addr string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"events", "quarantine"}, args...), map[string]string{"GATEWAY_GRPC_ADDR": addr}, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestEventsQuarantineCommands: against a running gateway, list shows a
// quarantined event with its reason, show prints its raw bytes, reinject
// fails while the event is still malformed and, with a corrected event from
// a file, appends it: it streams once however often it is re-injected.
func TestEventsQuarantineCommands(t *testing.T) {
	g := servertest.Start(t)
	addr := g.Server.GRPCAddr()
	ag := uuid.NewString()
	bad := map[string]any{
		"id": uuid.NewString(), "created_at": "2026-01-02T10:00:00", "type": "TOPUP.SETTLED", "webhook_id": g.Sim.WebhookID(),
		"object": map[string]any{"id": uuid.NewString(), "account_group_id": ag, "status": "SETTLED", "cash_amount": "5.00", "currency": "EUR"},
	}
	raw, _ := json.Marshal(bad)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if code, err := g.Sim.SendDelivery(ctx, g.BaseURL+server.WebhookPath, []byte(`{"payload":[`+string(raw)+`]}`)); err != nil || code != http.StatusOK {
		t.Fatalf("delivery: %d %v", code, err)
	}

	code, out, errOut := runEventsT(t, addr, "list")
	if code != exitOK || !strings.Contains(out, "payload[0].created_at: not an RFC 3339 date-time") || !strings.Contains(out, bad["id"].(string)) {
		t.Fatalf("list: exit %d\n%s%s", code, out, errOut)
	}
	id := regexp.MustCompile(`(?m)^([0-9a-f]{32}) `).FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("no record id in\n%s", out)
	}

	code, out, _ = runEventsT(t, addr, "show", id[1])
	if code != exitOK || !strings.Contains(out, string(raw)) || !strings.Contains(out, "reason:") {
		t.Fatalf("show: exit %d\n%s", code, out)
	}
	code, _, errOut = runEventsT(t, addr, "reinject", id[1])
	if code != exitFailure || !strings.Contains(errOut, "FailedPrecondition") || !strings.Contains(errOut, "created_at") {
		t.Fatalf("reinject as received: exit %d %s", code, errOut)
	}

	stream, err := g.Topups().WatchTopupEvents(ctx, &gatewayv1.WatchTopupEventsRequest{AccountGroupId: ag})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil { // subscribed
		t.Fatal(err)
	}
	bad["created_at"] = "2026-01-02T10:00:00Z"
	fixed := filepath.Join(t.TempDir(), "fixed.json")
	fixedJSON, _ := json.Marshal(bad)
	if err := os.WriteFile(fixed, fixedJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		code, out, errOut = runEventsT(t, addr, "reinject", "--event-file", fixed, id[1])
		if code != exitOK || !strings.Contains(out, "as event "+bad["id"].(string)) {
			t.Fatalf("reinject fixed: exit %d %s %s", code, out, errOut)
		}
	}
	var got []string
	for len(got) < 1 {
		m, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if e := m.GetEvent(); e != nil {
			got = append(got, e.GetId())
		}
	}
	if got[0] != bad["id"] {
		t.Fatalf("streamed %v, want %s", got, bad["id"])
	}
	code, out, _ = runEventsT(t, addr, "show", id[1])
	if code != exitOK || !strings.Contains(out, "reinjected:") || !strings.Contains(out, bad["id"].(string)) {
		t.Errorf("show after re-injection does not say when:\n%s", out)
	}
}

func TestEventsCommandUsage(t *testing.T) {
	for _, args := range [][]string{
		{"events"},
		{"events", "dlq"},
		{"events", "quarantine", "frob"},
		{"events", "quarantine", "show"},
		{"events", "quarantine", "list", "extra"},
		{"events", "quarantine", "list", "--nope"},
		{"events", "quarantine", "list", "--grpc-addr", "no-port"},
		{"events", "quarantine", "reinject", "0123", "--event-file", "/does/not/exist"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, nil, &out, &errOut); code != exitConfig || !strings.Contains(errOut.String(), "Usage:") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut.String())
		}
	}
	var out bytes.Buffer
	if code := run(context.Background(), []string{"events", "-h"}, nil, &out, &out); code != exitOK || !strings.Contains(out.String(), "reinject") {
		t.Errorf("events -h: %d %s", code, out.String())
	}
	// A gateway that is not there: one line, exit 1.
	var errOut bytes.Buffer
	if code := run(context.Background(), []string{"events", "quarantine", "list", "--grpc-addr", "127.0.0.1:1"}, nil, &out, &errOut); code != exitFailure ||
		strings.Count(errOut.String(), "\n") != 1 {
		t.Errorf("no gateway: exit %d, stderr %q", code, errOut.String())
	}
}

func TestDialAddr(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:9090":        "127.0.0.1:9090",
		"0.0.0.0:9090":          "127.0.0.1:9090",
		":9090":                 "127.0.0.1:9090",
		"[::]:9090":             "127.0.0.1:9090",
		"[::1]:9090":            "[::1]:9090",
		"gateway.internal:9090": "gateway.internal:9090",
	} {
		if got := dialAddr(in); got != want {
			t.Errorf("dialAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEventsQuarantineCommandsWithMutualTLS: against a gateway whose callers
// prove who they are, the command brings the operator's certificate, and
// the policy decides: the operator may list, a caller without the grant
// may not, and one without a certificate does not get in.
func TestEventsQuarantineCommandsWithMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "callers")
	certFile, keyFile := ca.Server(t, "gateway").Write(t, dir, "server")
	caFile := filepath.Join(dir, "ca.pem")
	tlstest.WriteFile(t, caFile, ca.PEM)
	srvTLS, err := tlsconfig.New(certFile, keyFile, tlsconfig.WithClientCAFile(caFile))
	if err != nil {
		t.Fatal(err)
	}
	policyFile := filepath.Join(dir, "policy.yaml")
	tlstest.WriteFile(t, policyFile, []byte("callers:\n  - identity: operator\n    methods: [\"upvest.gateway.admin.v1.EventQuarantineService/*\"]\n  - identity: payout-worker\n    methods: [\"upvest.gateway.v1.PaymentsService/*\"]\n"))
	policy, err := auth.LoadPolicyFile(policyFile, policyMethods())
	if err != nil {
		t.Fatal(err)
	}
	guard, err := auth.NewGuard(auth.WithPolicyFile(policy))
	if err != nil {
		t.Fatal(err)
	}
	operator := ca.Client(t, "operator")
	g := servertest.Start(t, servertest.WithTLS(srvTLS, tlstest.ClientConfig(ca.Pool(), operator.TLS)),
		servertest.WithServerOptions(server.WithGuard(guard), server.WithServiceOptions(service.WithAdminGuard(nil))))
	addr := g.Server.GRPCAddr()
	opCert, opKey := operator.Write(t, dir, "operator")
	workerCert, workerKey := ca.Client(t, "payout-worker").Write(t, dir, "worker")

	if code, out, errOut := runEventsT(t, addr, "list", "--ca-file", caFile, "--cert-file", opCert, "--key-file", opKey); code != exitOK {
		t.Fatalf("the operator's list: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runEventsT(t, addr, "list", "--ca-file", caFile, "--cert-file", workerCert, "--key-file", workerKey); code != exitFailure || !strings.Contains(errOut, "PermissionDenied") {
		t.Errorf("a caller without the grant: exit %d %s, want PermissionDenied", code, errOut)
	}
	if code, _, _ := runEventsT(t, addr, "list", "--ca-file", caFile); code != exitFailure {
		t.Errorf("no certificate: exit %d, want refused", code)
	}
	if code, _, errOut := runEventsT(t, addr, "list", "--cert-file", opCert, "--key-file", opKey); code != exitConfig || !strings.Contains(errOut, "--ca-file") {
		t.Errorf("a certificate without TLS: exit %d %s", code, errOut)
	}
}
