package idempotency

import (
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
	"testing"
)

// validKVKey is what the key-value store accepts as a key.
var validKVKey = regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`)

func checkKVKey(t *testing.T, key, kv string) {
	t.Helper()
	if !validKVKey.MatchString(kv) || strings.HasPrefix(kv, ".") || strings.HasSuffix(kv, ".") || strings.Contains(kv, "..") {
		t.Fatalf("kvKey(%q) = %q: not a valid key-value key", key, kv)
	}
	if got := keyFromKV(t, kv); got != key {
		t.Fatalf("kvKey(%q) = %q reads back as %q", key, kv, got)
	}
}

// keyFromKV inverts kvKey, which shows that it is one-to-one.
func keyFromKV(t *testing.T, kv string) string {
	t.Helper()
	if rest, ok := strings.CutPrefix(kv, escapedPrefix); ok {
		b, err := base64.RawURLEncoding.DecodeString(rest)
		if err != nil {
			t.Fatalf("escaped key %q: %v", kv, err)
		}
		return string(b)
	}
	if strings.Contains(kv, ".") {
		t.Fatalf("plain key %q holds a '.'", kv)
	}
	return kv
}

func TestKVKey(t *testing.T) {
	t.Parallel()
	const lower = "2596db3b-0d03-4651-9eda-970910479dfb"
	tests := []struct {
		name, key string
		want      string // "" for an escaped key
	}{
		{"lower-case UUID, as the gateway sends it", lower, lower},
		{"upper-case UUID is kept as it is", strings.ToUpper(lower), strings.ToUpper(lower)},
		{"UUID without hyphens", strings.ReplaceAll(lower, "-", ""), strings.ReplaceAll(lower, "-", "")},
		{"braced UUID", "{" + lower + "}", ""},
		{"URN", "urn:uuid:" + lower, ""},
		{"looks escaped", "x.abc", ""},
		{"dots", "a..b", ""},
		{"wildcards", "a.*.>", ""},
		{"space and newline", "a b\n", ""},
		{"not UTF-8", "\xff\xfe", ""},
		{"longest", strings.Repeat("a", MaxKeyLen), strings.Repeat("a", MaxKeyLen)},
	}
	for _, tt := range tests {
		kv, err := kvKey(tt.key)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if tt.want != "" && kv != tt.want {
			t.Errorf("%s: kvKey = %q, want %q", tt.name, kv, tt.want)
		}
		if tt.want == "" && !strings.HasPrefix(kv, escapedPrefix) {
			t.Errorf("%s: kvKey = %q, want it escaped", tt.name, kv)
		}
		checkKVKey(t, tt.key, kv)
	}

	// Case is kept, so the two spellings of a UUID are two keys: the caller
	// lower-cases request_ids first.
	up, _ := kvKey(strings.ToUpper(lower))
	low, _ := kvKey(lower)
	if up == low {
		t.Error("upper- and lower-case spellings map to one key")
	}
	canonical, _ := kvKey(strings.ToLower(strings.ToUpper(lower)))
	if canonical != low {
		t.Error("the lower-cased spelling does not map to the lower-case key")
	}

	for _, bad := range []string{"", strings.Repeat("a", MaxKeyLen+1)} {
		if _, err := kvKey(bad); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("kvKey(%d bytes) = %v, want ErrInvalidKey", len(bad), err)
		}
	}
}

// Every key the caller may send maps onto a valid key-value key, and no two
// keys onto the same one.
func FuzzKVKey(f *testing.F) {
	for _, seed := range []string{
		"2596db3b-0d03-4651-9eda-970910479dfb",
		"2596DB3B-0D03-4651-9EDA-970910479DFB",
		"{2596db3b-0d03-4651-9eda-970910479dfb}",
		"x.eA", "a.b", ".", "*", ">", "=", "/", "\x00", "é",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, key string) {
		kv, err := kvKey(key)
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) || (key != "" && len(key) <= MaxKeyLen) {
				t.Fatalf("kvKey(%q) = %v", key, err)
			}
			return
		}
		checkKVKey(t, key, kv)
	})
}
