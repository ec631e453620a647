package main

import (
	"slices"
	"strings"
	"testing"
)

func TestCORSConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		origins, creds string
		want           []string
		wantCreds      bool
		errEnv         string
	}{
		{"", "false", nil, false, ""},
		{"https://dashboard.example.com, http://localhost:3000", "true", []string{"https://dashboard.example.com", "http://localhost:3000"}, true, ""},
		{"*", "false", []string{"*"}, false, ""},
		{"*", "true", nil, false, "GATEWAY_CORS_ALLOW_CREDENTIALS"},
		{"dashboard.example.com", "false", nil, false, "GATEWAY_CORS_ALLOWED_ORIGINS"},
		{"https://dashboard.example.com/", "false", nil, false, "GATEWAY_CORS_ALLOWED_ORIGINS"},
		{"https://dashboard.example.com/app", "false", nil, false, "GATEWAY_CORS_ALLOWED_ORIGINS"},
		{"https://user@dashboard.example.com", "false", nil, false, "GATEWAY_CORS_ALLOWED_ORIGINS"},
		{"https://a.example.com", "yes please", nil, false, "GATEWAY_CORS_ALLOW_CREDENTIALS"},
	}
	for _, tc := range tests {
		got, err := Config{CORSAllowedOrigins: tc.origins, CORSAllowCredentials: tc.creds}.CORS()
		if tc.errEnv != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errEnv) {
				t.Errorf("CORS(%q, %q) = %v, want an error naming %s", tc.origins, tc.creds, err, tc.errEnv)
			}
			continue
		}
		if err != nil || !slices.Equal(got.AllowedOrigins, tc.want) || got.AllowCredentials != tc.wantCreds {
			t.Errorf("CORS(%q, %q) = %+v, %v", tc.origins, tc.creds, got, err)
		}
	}
}

func FuzzCORSConfig(f *testing.F) {
	for _, s := range []string{"", "*", "https://a.example.com,http://localhost:3000", "a.example.com", "https://a/"} {
		f.Add(s, "false")
	}
	f.Fuzz(func(t *testing.T, origins, creds string) {
		c, err := Config{CORSAllowedOrigins: origins, CORSAllowCredentials: creds}.CORS()
		if err != nil {
			return
		}
		for _, o := range c.AllowedOrigins {
			if o != "*" && (!strings.HasPrefix(o, "http") || strings.HasSuffix(o, "/") || strings.ContainsAny(o, " ,")) {
				t.Errorf("accepted origin %q", o)
			}
		}
		if c.AllowCredentials && slices.Contains(c.AllowedOrigins, "*") {
			t.Error("credentials for any origin")
		}
	})
}
