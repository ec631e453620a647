package server

import (
	"net/http"
	"testing"
)

func TestWithCORSRefuses(t *testing.T) {
	t.Parallel()
	for _, c := range []CORS{
		{AllowedOrigins: []string{"*"}, AllowCredentials: true},
		{AllowedOrigins: []string{"dashboard.test"}},
		{AllowedOrigins: []string{"https://dashboard.test/"}},
	} {
		if _, err := withCORS(c, http.NotFoundHandler()); err == nil {
			t.Errorf("withCORS(%+v) took it", c)
		}
	}
	if h, err := withCORS(CORS{}, http.NotFoundHandler()); err != nil || h == nil {
		t.Errorf("withCORS without origins: %v", err)
	}
}
