package reloadfile_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upvest-gateway/gateway/internal/reloadfile"
)

// parseSum parses files of one integer each and returns their sum.
func parseSum(contents [][]byte) (int, error) {
	sum := 0
	for _, c := range contents {
		n, err := strconv.Atoi(strings.TrimSpace(string(c)))
		if err != nil {
			return 0, errors.New("not a number")
		}
		sum += n
	}
	return sum, nil
}

// replace writes content to path the way deployments do: a new file renamed
// over the old one.
func replace(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestValue(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	replace(t, a, "1")
	replace(t, b, "2")

	var mu sync.Mutex
	var reports []error
	reloads := 0
	v, err := reloadfile.New(parseSum, []string{a, b},
		reloadfile.WithCheckInterval(0),
		reloadfile.WithErrorReport(func(err error) { mu.Lock(); reports = append(reports, err); mu.Unlock() }),
		reloadfile.WithReloadReport(func() { mu.Lock(); reloads++; mu.Unlock() }),
	)
	if err != nil {
		t.Fatal(err)
	}
	if got := v.Get(); got != 3 {
		t.Fatalf("Get = %d, want 3", got)
	}

	replace(t, b, "5")
	if got := v.Get(); got != 6 {
		t.Fatalf("after replacing b: Get = %d, want 6", got)
	}
	// Rewritten in place, same size.
	if err := os.WriteFile(a, []byte("2"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := v.Get(); got != 7 {
		t.Fatalf("after rewriting a: Get = %d, want 7", got)
	}

	// Bad content keeps the last good value and is reported once.
	replace(t, a, "secret-material")
	for range 3 {
		if got := v.Get(); got != 7 {
			t.Fatalf("after a bad file: Get = %d, want 7 (kept)", got)
		}
	}
	// A missing file too (reported on every look: it may come back any time).
	if err := os.Remove(b); err != nil {
		t.Fatal(err)
	}
	if got := v.Get(); got != 7 {
		t.Fatalf("with b missing: Get = %d, want 7 (kept)", got)
	}
	replace(t, b, "5")
	replace(t, a, "10")
	if got := v.Get(); got != 15 {
		t.Fatalf("after repair: Get = %d, want 15", got)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(reports) != 2 {
		t.Fatalf("got %d error reports, want 2 (bad content once, missing file once): %v", len(reports), reports)
	}
	for _, r := range reports {
		if strings.Contains(r.Error(), "secret-material") {
			t.Errorf("error report quotes file content: %v", r)
		}
	}
	if reloads != 3 {
		t.Errorf("got %d reload reports, want 3", reloads)
	}
}

func TestValueInterval(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "n")
	replace(t, path, "1")
	v, err := reloadfile.New(parseSum, []string{path}, reloadfile.WithCheckInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	replace(t, path, "2")
	if got := v.Get(); got != 1 {
		t.Fatalf("within the interval: Get = %d, want 1 (files not looked at)", got)
	}
	changed, err := v.Reload()
	if err != nil || !changed {
		t.Fatalf("Reload = %v, %v; want true, nil", changed, err)
	}
	if got := v.Current(); got != 2 {
		t.Fatalf("after Reload: Current = %d, want 2", got)
	}
	if changed, err := v.Reload(); changed || err != nil {
		t.Fatalf("Reload of unchanged files = %v, %v; want false, nil", changed, err)
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	replace(t, bad, "private-bytes")
	big := filepath.Join(dir, "big")
	replace(t, big, strings.Repeat("1", reloadfile.MaxFileBytes+1))
	for _, tc := range []struct {
		name  string
		paths []string
		want  string
	}{
		{"none", nil, "no file"},
		{"missing", []string{filepath.Join(dir, "missing")}, "missing"},
		{"bad", []string{bad}, "not a number"},
		{"too large", []string{big}, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := reloadfile.New(parseSum, tc.paths)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "private-bytes") {
				t.Fatalf("error quotes file content: %v", err)
			}
		})
	}
}

func TestGetConcurrent(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "n")
	replace(t, path, "1")
	v, err := reloadfile.New(parseSum, []string{path}, reloadfile.WithCheckInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if got := v.Get(); got < 1 {
					t.Errorf("Get = %d", got)
					return
				}
			}
		})
	}
	for n := 2; n < 10; n++ {
		replace(t, path, strconv.Itoa(n))
	}
	wg.Wait()
	if _, err := v.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := v.Get(); got != 9 {
		t.Fatalf("Get = %d, want 9", got)
	}
}
