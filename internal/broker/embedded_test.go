package broker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// TestOpenEmbeddedBadDataDir: a data directory the server could not keep
// its files in stops Open at once with ErrDataDir, naming the directory,
// instead of a server that never becomes ready.
func TestOpenEmbeddedBadDataDir(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, dir := range map[string]string{"a file": file, "under a file": filepath.Join(file, "data")} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := Open(ctx, Config{DataDir: dir})
			if !errors.Is(err, ErrDataDir) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("Open = %v, want ErrDataDir naming %s", err, dir)
			}
			if ctx.Err() != nil {
				t.Fatal("Open waited for the start-up timeout")
			}
		})
	}
}

// TestAwaitReadyFatal: a server that reported a fatal error is not waited
// for; one that is silent is waited for until the deadline.
func TestAwaitReadyFatal(t *testing.T) {
	t.Parallel()
	srv, err := server.NewServer(&server.Options{DontListen: true, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	// Never started: it never becomes ready.
	fatal := make(chan string, 1)
	fatal <- "Can't start JetStream: permission denied"
	if err := awaitReady(srv, fatal, time.Hour); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("awaitReady after a fatal error = %v", err)
	}
	if err := awaitReady(srv, make(chan string), 100*time.Millisecond); err == nil || !strings.Contains(err.Error(), "in time") {
		t.Fatalf("awaitReady of a silent server = %v", err)
	}
}
