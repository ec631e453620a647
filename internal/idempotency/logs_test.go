package idempotency

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// What a request carries (its fingerprint, made of the request's bytes, and
// its outcome, the response) never reaches a log line or an error, on any
// path that logs: releases, takeovers, lost leases, unrecorded outcomes.
func TestLogsAndErrorsCarryNoRequestContent(t *testing.T) {
	t.Parallel()
	const secretFP, secretOutcome = "fp-iban-DE89370400440532013000", "outcome-token-9f8e7d"
	fp := []byte(secretFP)
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	u := startServer(t, false).ClientURL()
	cfg := shortLease(testConfig(t, u))
	ncA, jsA := connect(t, u)
	_, jsB := connect(t, u)
	a := openStore(t, jsA, cfg, WithLogger(logger))
	b := openStore(t, jsB, cfg, WithLogger(logger))
	ctx := testContext(t)
	var errs []error

	// Released, then taken over.
	key := newKey()
	unknown := newRequest(secretOutcome)
	unknown.final = false
	_, err := a.Do(ctx, key, fp, unknown.run)
	errs = append(errs, err)
	_, err = a.Do(ctx, key, fp, newRequest(secretOutcome).run)
	errs = append(errs, err)
	_, err = a.Do(ctx, key, []byte("another request"), newRequest(secretOutcome).run)
	errs = append(errs, err)

	// An owner that loses its connection mid-run: renewals fail, the lease
	// is taken over, its outcome cannot be recorded.
	key = newKey()
	held := newRequest(secretOutcome).held()
	done := doAsync(ctx, a, key, fp, held)
	held.waitStarted(t)
	ncA.Close()
	_, err = b.Do(ctx, key, fp, newRequest(secretOutcome).run)
	errs = append(errs, err)
	held.let()
	errs = append(errs, receive(t, done).err)
	_, err = a.Do(ctx, newKey(), fp, newRequest(secretOutcome).run)
	errs = append(errs, err)

	if !errors.Is(errs[2], ErrFingerprintMismatch) || !errors.Is(errs[len(errs)-1], ErrUnavailable) {
		t.Fatalf("errors: %v", errs)
	}
	text := logs.String()
	for _, err := range errs {
		if err != nil {
			text += err.Error() + "\n"
		}
	}
	if !strings.Contains(text, "lease expired") || !strings.Contains(text, "could not record") {
		t.Fatalf("the paths that log did not run:\n%s", text)
	}
	for _, secret := range []string{secretFP, secretOutcome} {
		if strings.Contains(text, secret) {
			t.Fatalf("%q leaked:\n%s", secret, text)
		}
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
