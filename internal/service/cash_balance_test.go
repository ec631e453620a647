package service

import (
	"testing"
	"time"
)

func TestBalanceToken(t *testing.T) {
	at := time.Date(2026, 11, 21, 10, 0, 0, 123456789, time.UTC)
	for _, tc := range []struct {
		name      string
		token     string
		wantLog   string
		wantAt    time.Time
		wantValid bool
	}{
		{"empty", "", "", time.Time{}, true},
		{"a log token alone", "AAECAw", "AAECAw", time.Time{}, true},
		{"with its time", balanceToken("AAECAw", at), "AAECAw", at, true},
		{"time not base 36", "AAECAw.!!", "", time.Time{}, false},
		{"negative time", "AAECAw.-5", "", time.Time{}, false},
		{"zero time", "AAECAw.0", "", time.Time{}, false},
		{"two dots", "AAECAw.1.2", "", time.Time{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, newest, ok := parseBalanceToken(tc.token)
			if ok != tc.wantValid || log != tc.wantLog || !newest.Equal(tc.wantAt) {
				t.Errorf("parseBalanceToken(%q) = %q, %v, %v; want %q, %v, %v", tc.token, log, newest, ok, tc.wantLog, tc.wantAt, tc.wantValid)
			}
		})
	}
	if got := balanceToken("AAECAw", time.Time{}); got != "AAECAw" {
		t.Errorf("balanceToken without a balance sent = %q, want the log token alone", got)
	}
}

// FuzzBalanceToken: any resume_token a caller sends parses without panic, and
// whatever balanceToken makes parses back to its parts.
func FuzzBalanceToken(f *testing.F) {
	f.Add("", int64(0))
	f.Add("AAECAw", int64(1))
	f.Add("AAECAw.kx3p", int64(1_700_000_000_000_000_000))
	f.Fuzz(func(t *testing.T, token string, nanos int64) {
		parseBalanceToken(token)
		if nanos <= 0 {
			return
		}
		at := time.Unix(0, nanos)
		log, newest, ok := parseBalanceToken(balanceToken("AAECAw", at))
		if !ok || log != "AAECAw" || !newest.Equal(at) {
			t.Fatalf("round trip of %v: %q, %v, %v", at, log, newest, ok)
		}
	})
}
