package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// `gateway healthcheck` is the container's HEALTHCHECK: the image has no
// shell and no curl, so the binary asks the running gateway on its own
// host itself.

const healthcheckUsage = `Usage: gateway healthcheck [--addr HOST:PORT] [--path /healthz] [--timeout 3s]

Asks the gateway running on this host for its health: exit 0 when it answers
200, 1 otherwise. The address is GATEWAY_ADMIN_ADDR when set, else
GATEWAY_HTTP_ADDR (its default when unset); one on every interface is asked
on loopback.
`

// runHealthcheck runs `gateway healthcheck`.
func runHealthcheck(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gateway healthcheck", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr, tlsOn := healthcheckAddr(env)
	fs.StringVar(&addr, "addr", addr, "the gateway's admin or HTTP address")
	path := fs.String("path", "/healthz", "/healthz (alive), /readyz (ready for traffic), or another path answering 200 when healthy")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, healthcheckUsage)
			return exitOK
		}
		fmt.Fprintf(stderr, "gateway healthcheck: %v\n%s", err, healthcheckUsage)
		return exitConfig
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "gateway healthcheck: unexpected argument\n%s", healthcheckUsage)
		return exitConfig
	case !strings.HasPrefix(*path, "/") || strings.ContainsAny(*path, " \t\r\n#"):
		fmt.Fprintf(stderr, "gateway healthcheck: --path must be an absolute path such as /healthz\n")
		return exitConfig
	case *timeout <= 0:
		fmt.Fprintf(stderr, "gateway healthcheck: --timeout must be positive\n")
		return exitConfig
	}
	if err := checkAddr("GATEWAY_HTTP_ADDR", addr); err != nil {
		fmt.Fprintf(stderr, "gateway healthcheck: --addr %q is not a host:port address\n", addr)
		return exitConfig
	}

	scheme := "http"
	transport := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	if tlsOn {
		// The listener's certificate names the service, not loopback; the
		// check sends nothing and reads a status, so the server's identity
		// does not matter here. Client certificates are asked for on HTTP
		// but not required, so none is needed.
		scheme = "https"
		transport.TLSClientConfig = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12} //nolint:gosec // see above
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+dialAddr(addr)+*path, nil)
	if err != nil {
		fmt.Fprintf(stderr, "gateway healthcheck: %v\n", err)
		return exitConfig
	}
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "gateway healthcheck: %s: %v\n", *path, errors.Unwrap(err))
		return exitFailure
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	line := strings.TrimSpace(printableText(string(body)))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "gateway healthcheck: %s answered %d %s\n", *path, resp.StatusCode, line)
		return exitFailure
	}
	fmt.Fprintf(stdout, "%s %s\n", *path, line)
	return exitOK
}

// healthcheckAddr is where the running gateway answers health checks, and
// whether that listener speaks TLS: the admin listener (plain) when
// GATEWAY_ADMIN_ADDR is set, else the HTTP listener, with TLS when
// GATEWAY_TLS_CERT_FILE is set.
func healthcheckAddr(env map[string]string) (string, bool) {
	if a := strings.TrimSpace(env["GATEWAY_ADMIN_ADDR"]); a != "" && a != AdminOff {
		return a, false
	}
	a := strings.TrimSpace(env["GATEWAY_HTTP_ADDR"])
	if a == "" {
		a = settingOf("GATEWAY_HTTP_ADDR").def
	}
	return a, strings.TrimSpace(env["GATEWAY_TLS_CERT_FILE"]) != ""
}
