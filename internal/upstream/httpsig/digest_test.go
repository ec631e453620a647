package httpsig

import (
	"strings"
	"testing"
)

func TestContentDigestVectors(t *testing.T) {
	tests := []struct {
		body string
		want string
	}{
		// The README's vectors.
		{`{"hello": "world"}`, "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"},
		{`{"key": "value"}`, "sha-512=:Hd9/AvGZkbjitW1+Ml8Fg1ux1mtcDYe6mLQjDyoowIWa3LM/PmwN2v9O+MjtQGrCA3EQWUL54dlgxKHyYbrucw==:"},
		// SHA-512 of the empty string (FIPS 180 test vector).
		{"", "sha-512=:z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==:"},
	}
	for _, tt := range tests {
		if got := ContentDigest([]byte(tt.body)); got != tt.want {
			t.Errorf("ContentDigest(%q) = %s, want %s", tt.body, got, tt.want)
		}
		if err := checkContentDigest(tt.want, []byte(tt.body)); err != nil {
			t.Errorf("checkContentDigest(%q): %v", tt.body, err)
		}
	}
}

func TestLegacyDigestVectors(t *testing.T) {
	tests := []struct {
		body string
		want string
	}{
		// SHA-256 of "abc" and of "" (FIPS 180 test vectors).
		{"abc", "SHA-256=ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="},
		{"", "SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="},
	}
	for _, tt := range tests {
		if got := LegacyDigest([]byte(tt.body)); got != tt.want {
			t.Errorf("LegacyDigest(%q) = %s, want %s", tt.body, got, tt.want)
		}
		if err := checkLegacyDigest(tt.want, []byte(tt.body)); err != nil {
			t.Errorf("checkLegacyDigest(%q): %v", tt.body, err)
		}
	}
}

func TestCheckContentDigest(t *testing.T) {
	body := []byte(`{"hello": "world"}`)
	good := ContentDigest(body)
	sha256Good := strings.TrimPrefix(LegacyDigest(body), "SHA-256=")
	tests := []struct {
		name   string
		header string
		ok     bool
	}{
		{"exact", good, true},
		{"with extra sha-256", good + ", sha-256=:" + sha256Good + ":", true},
		{"unknown algorithm ignored", "md5=:AAAA:, " + good, true},
		{"wrong body", ContentDigest([]byte("other")), false},
		{"wrong sha-256 alongside", good + ", sha-256=:" + strings.Repeat("A", 43) + "=:", false},
		{"only sha-256", "sha-256=:" + sha256Good + ":", false},
		{"token instead of bytes", "sha-512=abc", false},
		{"not a dictionary", "garbage!", false},
		{"empty", "", false},
		{"legacy syntax", "SHA-512=" + strings.TrimSuffix(strings.TrimPrefix(good, "sha-512=:"), ":"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkContentDigest(tt.header, body)
			if (err == nil) != tt.ok {
				t.Fatalf("checkContentDigest(%q) = %v, want ok=%v", tt.header, err, tt.ok)
			}
		})
	}
}

func TestCheckLegacyDigest(t *testing.T) {
	body := []byte(`{"payload":[]}`)
	good := LegacyDigest(body)
	tests := []struct {
		name   string
		header string
		ok     bool
	}{
		{"exact", good, true},
		{"lower-case algorithm", "sha-256=" + strings.TrimPrefix(good, "SHA-256="), true},
		{"list with unknown", "MD5=abc, " + good, true},
		{"wrong body", LegacyDigest([]byte("x")), false},
		{"no sha-256", "SHA-512=" + strings.TrimPrefix(good, "SHA-256="), false},
		{"not base64", "SHA-256=!!!", false},
		{"no equals", "SHA-256", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkLegacyDigest(tt.header, body)
			if (err == nil) != tt.ok {
				t.Fatalf("checkLegacyDigest(%q) = %v, want ok=%v", tt.header, err, tt.ok)
			}
		})
	}
}
