package main

import (
	"slices"
	"strconv"
	"strings"

	"github.com/upvest-gateway/gateway/internal/server"
)

// CORS is GATEWAY_CORS_ALLOWED_ORIGINS and GATEWAY_CORS_ALLOW_CREDENTIALS
// as the server's CORS policy: origins scheme://host[:port] or *, and
// credentials only for named origins.
func (c Config) CORS() (server.CORS, error) {
	var out server.CORS
	for raw := range strings.SplitSeq(c.CORSAllowedOrigins, ",") {
		o := strings.TrimSpace(raw)
		switch {
		case o == "":
			continue
		case o == "*":
		case !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://"),
			strings.HasSuffix(o, "/"), strings.Count(o, "/") != 2, strings.ContainsAny(o, "?#@ "):
			return out, configErr("GATEWAY_CORS_ALLOWED_ORIGINS", "%q is not an origin (scheme://host[:port], e.g. https://dashboard.example.com)", o)
		}
		out.AllowedOrigins = append(out.AllowedOrigins, o)
	}
	creds, err := strconv.ParseBool(c.CORSAllowCredentials)
	if err != nil {
		return out, configErr("GATEWAY_CORS_ALLOW_CREDENTIALS", "%q is not true or false", c.CORSAllowCredentials)
	}
	if creds && slices.Contains(out.AllowedOrigins, "*") {
		return out, configErr("GATEWAY_CORS_ALLOW_CREDENTIALS", "credentials cannot be allowed to any origin (*): name the origins in GATEWAY_CORS_ALLOWED_ORIGINS")
	}
	out.AllowCredentials = creds
	return out, nil
}
