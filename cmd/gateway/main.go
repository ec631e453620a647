// Command gateway serves the Upvest gRPC gateway: four gRPC services, their
// REST/JSON face and the OpenAPI description, in front of the Upvest
// Investment API.
//
//	gateway                 # configured by UPVEST_* and GATEWAY_* variables
//	gateway --simulate      # against an in-process simulator, no credentials
//	gateway -h              # every setting
//	gateway events quarantine list|show|reinject  # the running gateway's quarantine
//	gateway webhooks list|register|delete         # the tenant's webhook subscriptions at Upvest
//	gateway healthcheck                           # the container's HEALTHCHECK: exit 0 when healthy
//
// A missing or bad setting stops start-up with one line naming it (exit 2).
// SIGINT or SIGTERM drains calls in flight, for at most drainTimeout.
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
