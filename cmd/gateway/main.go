// Command gateway serves the Upvest gRPC gateway: four gRPC services, their
// REST/JSON face and the OpenAPI description, in front of the Upvest
// Investment API.
//
//	gateway                 # configured by UPVEST_* and GATEWAY_* variables
//	gateway --simulate      # against an in-process simulator, no credentials
//	gateway -h              # every setting
//	gateway --version       # the version it was built as (-ldflags "-X main.version=...")
//	gateway events quarantine list|show|reinject  # the running gateway's quarantine
//	gateway webhooks list|register|delete         # the tenant's webhook subscriptions at Upvest
//	gateway healthcheck                           # the container's HEALTHCHECK: exit 0 when healthy
//
// A missing or bad setting stops start-up at once with one log line naming
// it (exit 2). SIGINT or SIGTERM makes the gateway not ready, serves on for
// GATEWAY_SHUTDOWN_DELAY, then drains calls in flight for at most
// GATEWAY_DRAIN_TIMEOUT; a second signal ends it at once.
package main

import (
	"context"
	"os"
	"strings"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], environ(), os.Stdout, os.Stderr))
}

func environ() map[string]string {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env
}
