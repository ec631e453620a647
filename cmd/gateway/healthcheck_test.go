package main

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/upvest-gateway/gateway/internal/server/servertest"
)

// TestHealthcheck: `gateway healthcheck` exits 0 when the gateway on this
// host answers 200, 1 when it does not answer, 2 on a bad argument; the
// address comes from GATEWAY_ADMIN_ADDR, else GATEWAY_HTTP_ADDR, else
// --addr.
func TestHealthcheck(t *testing.T) {
	t.Parallel()
	g := servertest.Start(t)
	addr := g.Server.HTTPAddr()
	_, port, _ := net.SplitHostPort(addr)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		out  string
	}{
		{"http addr", map[string]string{"GATEWAY_HTTP_ADDR": addr}, nil, exitOK, `/healthz {"status":"SERVING"}`},
		{"every interface, asked on loopback", map[string]string{"GATEWAY_HTTP_ADDR": "0.0.0.0:" + port}, nil, exitOK, "/healthz"},
		{"admin addr wins", map[string]string{"GATEWAY_ADMIN_ADDR": addr, "GATEWAY_HTTP_ADDR": down}, nil, exitOK, "/healthz"},
		{"flag wins", map[string]string{"GATEWAY_HTTP_ADDR": down}, []string{"--addr", addr}, exitOK, "/healthz"},
		{"readiness", map[string]string{"GATEWAY_HTTP_ADDR": addr}, []string{"--path=/readyz"}, exitOK, `/readyz {"status":"READY"}`},
		{"nothing listening", map[string]string{"GATEWAY_HTTP_ADDR": down}, nil, exitFailure, "gateway healthcheck: /healthz: "},
		{"not a path", nil, []string{"--addr", addr, "--path", "healthz"}, exitConfig, "--path must be an absolute path"},
		{"a route answering 404", nil, []string{"--addr", addr, "--path", "/nothing"}, exitFailure, "/nothing answered 404"},
		{"bad addr", nil, []string{"--addr", "nowhere"}, exitConfig, `--addr "nowhere" is not a host:port address`},
		{"operand", nil, []string{"now"}, exitConfig, "unexpected argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			code := run(t.Context(), append([]string{"healthcheck"}, tc.args...), tc.env, &out, &errOut)
			if code != tc.code || !strings.Contains(out.String()+errOut.String(), tc.out) {
				t.Errorf("exit %d, want %d; output %q %q, want %q", code, tc.code, out.String(), errOut.String(), tc.out)
			}
		})
	}
}
