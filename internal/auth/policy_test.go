package auth_test

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/auth"
)

// gatewayMethods are the gateway's four services' methods.
var gatewayMethods = auth.MethodsOf(
	&gatewayv1.VirtualCashService_ServiceDesc,
	&gatewayv1.TopupService_ServiceDesc,
	&gatewayv1.PaymentsService_ServiceDesc,
	&gatewayv1.CashBalanceService_ServiceDesc,
)

const (
	payoutWorker = "spiffe://bank.example/ns/payouts/sa/payout-worker"
	groupA       = "2596db3b-0d03-4651-9eda-970910479dfb"
	groupB       = "7f1c2a44-6a0e-4b7e-9a53-0c3a1e2d4b5f"
)

// briefPolicy is the policy shape as operators write it.
const briefPolicy = `
callers:
  - identity: "spiffe://bank.example/ns/payouts/sa/payout-worker"  # URI SAN, CN or JWT claim
    methods: ["upvest.gateway.v1.PaymentsService/*", "upvest.gateway.v1.CashBalanceService/GetCashBalance"]
    account_groups: ["2596db3b-0d03-4651-9eda-970910479dfb"]        # optional; absent = any
    limits: {calls_per_second: 50, burst: 100, streams: 20}          # optional; defaults apply
  - identity: "balance-dashboard"
    methods: ["upvest.gateway.v1.CashBalanceService/*"]
`

func TestParsePolicy(t *testing.T) {
	t.Parallel()
	p, err := auth.ParsePolicy([]byte(briefPolicy), gatewayMethods)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.Identities(), ","); got != "balance-dashboard,"+payoutWorker {
		t.Fatalf("Identities = %s", got)
	}
	worker, ok := p.Grant(payoutWorker)
	if !ok {
		t.Fatal("no grant for the payout worker")
	}
	dashboard, _ := p.Grant("balance-dashboard")
	if _, ok := p.Grant("someone-else"); ok {
		t.Fatal("an identity not in the policy has a grant")
	}
	for _, tc := range []struct {
		grant  *auth.Grant
		method string
		want   bool
	}{
		{worker, gatewayv1.PaymentsService_CreateWithdrawal_FullMethodName, true},
		{worker, gatewayv1.PaymentsService_WatchPaymentEvents_FullMethodName, true},
		{worker, gatewayv1.CashBalanceService_GetCashBalance_FullMethodName, true},
		{worker, gatewayv1.CashBalanceService_WatchCashBalance_FullMethodName, false},
		{worker, gatewayv1.TopupService_CreateTopup_FullMethodName, false},
		{dashboard, gatewayv1.CashBalanceService_WatchCashBalance_FullMethodName, true},
		{dashboard, gatewayv1.PaymentsService_CreateWithdrawal_FullMethodName, false},
		{dashboard, "/upvest.gateway.v1.CashBalanceServiceX/GetCashBalance", false},
	} {
		if got := tc.grant.AllowsMethod(tc.method); got != tc.want {
			t.Errorf("%s AllowsMethod(%s) = %v, want %v", tc.grant.Identity(), tc.method, got, tc.want)
		}
	}
	if !worker.Restricted() || !worker.AllowsAccountGroup(groupA) || !worker.AllowsAccountGroup(strings.ToUpper(groupA)) || worker.AllowsAccountGroup(groupB) || worker.AllowsAccountGroup("") {
		t.Errorf("worker account groups: %v", worker.AccountGroups())
	}
	if dashboard.Restricted() || !dashboard.AllowsAccountGroup(groupB) || !dashboard.AllowsAccountGroup("") || dashboard.AccountGroups() != nil {
		t.Error("the dashboard, without account_groups, should have any account group")
	}
	if got := worker.Limits(); got != (auth.Limits{CallsPerSecond: 50, Burst: 100, Streams: 20}) {
		t.Errorf("worker limits = %+v", got)
	}
	if got := dashboard.Limits(); got != auth.DefaultLimits {
		t.Errorf("dashboard limits = %+v, want the defaults %+v", got, auth.DefaultLimits)
	}
}

func TestParsePolicyDefaults(t *testing.T) {
	t.Parallel()
	p, err := auth.ParsePolicy([]byte(`
defaults:
  limits: {calls_per_second: 2.5, streams: 3}
callers:
  - identity: a
    methods: ["*"]
  - identity: b
    methods: ["*"]
    limits: {burst: 7}
  - identity: c
    methods: ["upvest.gateway.v1.TopupService/GetTopup", "upvest.gateway.v1.TopupService/GetTopup"]
`), gatewayMethods)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := p.Grant("a")
	b, _ := p.Grant("b")
	if got := a.Limits(); got != (auth.Limits{CallsPerSecond: 2.5, Burst: auth.DefaultLimits.Burst, Streams: 3}) {
		t.Errorf("a limits = %+v", got)
	}
	if got := b.Limits(); got != (auth.Limits{CallsPerSecond: 2.5, Burst: 7, Streams: 3}) {
		t.Errorf("b limits = %+v", got)
	}
	if !a.AllowsMethod(gatewayv1.VirtualCashService_CreateVirtualCashIncrease_FullMethodName) {
		t.Error(`"*" does not allow every method`)
	}
	// An empty callers list is a policy that allows no one.
	if p, err := auth.ParsePolicy([]byte("callers: []\n"), gatewayMethods); err != nil || len(p.Identities()) != 0 {
		t.Errorf("callers: [] = %v, %v", p, err)
	}
}

func TestParsePolicyErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		yaml string
		line int
		want string
	}{
		{"empty file", "", 0, "empty"},
		{"comment only", "# nothing\n", 0, "empty"},
		{"not YAML", "callers: [\n", 0, "policy"},
		{"not a mapping", "- a\n", 1, "must be a mapping"},
		{"no callers", "defaults: {limits: {burst: 1}}\n", 1, "no callers list"},
		{"callers not a list", "callers: {identity: a}\n", 1, "callers: must be a list"},
		{"unknown top-level key", "callers: []\nuser: x\n", 2, `unknown key "user"`},
		{"unknown caller key", "callers:\n  - identity: a\n    methods: ['*']\n    method: ['*']\n", 4, `callers[0]: unknown key "method"`},
		{"unknown limits key", "callers:\n  - identity: a\n    methods: ['*']\n    limits: {rps: 1}\n", 4, `callers[0].limits: unknown key "rps"`},
		{"repeated key", "callers:\n  - identity: a\n    identity: b\n    methods: ['*']\n", 3, `key "identity" appears twice`},
		{"duplicate identity", "callers:\n  - identity: a\n    methods: ['*']\n  - identity: b\n    methods: ['*']\n  - identity: a\n    methods: ['*']\n", 6, `callers[2]: identity "a" is already granted at line 2`},
		{"no identity", "callers:\n  - methods: ['*']\n", 2, "callers[0]: no identity"},
		{"identity not a string", "callers:\n  - identity: 42\n    methods: ['*']\n", 2, "callers[0].identity: must be a string"},
		{"empty identity", "callers:\n  - identity: ''\n    methods: ['*']\n", 2, "callers[0].identity: must be printable"},
		{"identity with a newline", "callers:\n  - identity: \"a\\nb\"\n    methods: ['*']\n", 2, "must be printable"},
		{"no methods", "callers:\n  - identity: a\n", 2, "callers[0]: no methods"},
		{"empty methods", "callers:\n  - identity: a\n    methods: []\n", 3, "callers[0].methods: is empty"},
		{"null methods", "callers:\n  - identity: a\n    methods:\n", 3, "callers[0].methods: has no value"},
		{"methods a string", "callers:\n  - identity: a\n    methods: '*'\n", 3, "callers[0].methods: must be a list"},
		{"unknown service", "callers:\n  - identity: a\n    methods: ['upvest.gateway.v1.PaymentService/*']\n", 3, "callers[0].methods[0]: \"upvest.gateway.v1.PaymentService/*\": no service upvest.gateway.v1.PaymentService"},
		{"unknown method", "callers:\n  - identity: a\n    methods:\n      - upvest.gateway.v1.PaymentsService/GetWithdrawal\n      - upvest.gateway.v1.PaymentsService/DeleteWithdrawal\n", 5, "callers[0].methods[1]: \"upvest.gateway.v1.PaymentsService/DeleteWithdrawal\": service upvest.gateway.v1.PaymentsService has no method DeleteWithdrawal"},
		{"leading slash", "callers:\n  - identity: a\n    methods: ['/upvest.gateway.v1.PaymentsService/GetWithdrawal']\n", 3, "without the leading slash"},
		{"package wildcard", "callers:\n  - identity: a\n    methods: ['upvest.gateway.v1.*']\n", 3, "is not a method pattern"},
		{"bad UUID", "callers:\n  - identity: a\n    methods: ['*']\n    account_groups: ['2596db3b-0d03-4651-9eda-97091047']\n", 4, `callers[0].account_groups[0]: "2596db3b-0d03-4651-9eda-97091047" is not a UUID`},
		{"UUID with braces", "callers:\n  - identity: a\n    methods: ['*']\n    account_groups: ['{2596db3b-0d03-4651-9eda-970910479dfb}']\n", 4, "is not a UUID"},
		{"empty account groups", "callers:\n  - identity: a\n    methods: ['*']\n    account_groups: []\n", 4, "callers[0].account_groups: is empty"},
		{"null account groups", "callers:\n  - identity: a\n    methods: ['*']\n    account_groups: ~\n", 4, "callers[0].account_groups: has no value"},
		{"negative rate", "callers:\n  - identity: a\n    methods: ['*']\n    limits: {calls_per_second: -1}\n", 4, "callers[0].limits.calls_per_second: must be a positive number"},
		{"zero burst", "callers:\n  - identity: a\n    methods: ['*']\n    limits: {burst: 0}\n", 4, "callers[0].limits.burst: must be positive"},
		{"negative streams", "callers:\n  - identity: a\n    methods: ['*']\n    limits:\n      streams: -3\n", 5, "callers[0].limits.streams: must be positive"},
		{"fractional burst", "callers:\n  - identity: a\n    methods: ['*']\n    limits: {burst: 1.5}\n", 4, "burst: must be a whole number"},
		{"rate as a string", "callers:\n  - identity: a\n    methods: ['*']\n    limits: {calls_per_second: '5'}\n", 4, "calls_per_second: must be a number"},
		{"infinite rate", "callers:\n  - identity: a\n    methods: ['*']\n    limits: {calls_per_second: .inf}\n", 4, "must be a positive number"},
		{"negative default", "defaults:\n  limits: {streams: -1}\ncallers: []\n", 2, "defaults.limits.streams: must be positive"},
		{"alias", "callers:\n  - &w {identity: a, methods: ['*']}\n  - *w\n", 2, "anchors and aliases"},
		{"two documents", "callers: []\n---\ncallers: []\n", 2, "more than one YAML document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := auth.ParsePolicy([]byte(tc.yaml), gatewayMethods)
			if err == nil {
				t.Fatalf("parsed; want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			var pe *auth.PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *PolicyError", err)
			}
			if tc.line != 0 && pe.Line != tc.line {
				t.Errorf("error %q is at line %d, want %d", err, pe.Line, tc.line)
			}
		})
	}
}

func TestParsePolicyKnownMethods(t *testing.T) {
	t.Parallel()
	if _, err := auth.ParsePolicy([]byte("callers: []\n"), []string{"not-a-method"}); err == nil {
		t.Fatal("a malformed known method name was accepted")
	}
	// Full method names with or without the leading slash are the same.
	p, err := auth.ParsePolicy([]byte("callers:\n  - identity: a\n    methods: ['grpc.health.v1.Health/Check']\n"), []string{"grpc.health.v1.Health/Check"})
	if err != nil {
		t.Fatal(err)
	}
	g, _ := p.Grant("a")
	if !g.AllowsMethod("/grpc.health.v1.Health/Check") {
		t.Error("the health check is not allowed")
	}
}

func TestAllowAll(t *testing.T) {
	t.Parallel()
	g, ok := auth.AllowAll().Grant("anyone")
	if !ok || !g.AllowsMethod("/any.Service/Any") || g.Restricted() || g.Limits() != (auth.Limits{}) {
		t.Fatalf("AllowAll grant = %+v, %v", g, ok)
	}
}

func TestMethodsOfServer(t *testing.T) {
	t.Parallel()
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	gatewayv1.RegisterCashBalanceServiceServer(srv, cashBalances{})
	got := strings.Join(auth.MethodsOfServer(srv), " ")
	for _, want := range []string{healthpb.Health_Check_FullMethodName, healthpb.Health_Watch_FullMethodName, gatewayv1.CashBalanceService_GetCashBalance_FullMethodName, gatewayv1.CashBalanceService_WatchCashBalance_FullMethodName} {
		if !strings.Contains(got, want) {
			t.Errorf("MethodsOfServer lacks %s: %s", want, got)
		}
	}
	if n := len(auth.MethodsOf(&gatewayv1.PaymentsService_ServiceDesc)); n != 8 {
		t.Errorf("MethodsOf(PaymentsService) has %d methods, want 8", n)
	}
}
