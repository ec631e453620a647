package broker

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestOpenEmbedded(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := Open(ctx, Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if !b.Embedded() || b.Conn() == nil || b.JetStream() == nil {
		t.Fatalf("embedded broker: %+v", b)
	}
	// JetStream works: a stream can be created.
	if _, err := b.JetStream().CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	if b.IsClosed() {
		t.Fatal("closed before Close")
	}
	b.Close()
	b.Close() // safe twice
	if !b.IsClosed() {
		t.Fatal("not closed after Close")
	}
	select {
	case <-b.Closed():
	default:
		t.Fatal("Closed channel open after Close")
	}
}

func TestOpenEmbeddedNeedsDataDir(t *testing.T) {
	t.Parallel()
	if _, err := Open(context.Background(), Config{}); err == nil {
		t.Fatal("Open without DataDir and URL succeeded")
	}
}

// A NATS that cannot be reached is ErrUnavailable, and the error does not
// quote the URL, which may carry credentials.
func TestOpenExternalUnreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := Open(ctx, Config{URL: "nats://user:s3cret@127.0.0.1:1"})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Open = %v, want ErrUnavailable", err)
	}
	if s := err.Error(); strings.Contains(s, "s3cret") || strings.Contains(s, "user:") {
		t.Fatalf("error quotes the URL: %q", s)
	}
}

func TestOpenExternal(t *testing.T) {
	t.Parallel()
	url := os.Getenv("GATEWAY_NATS_URL")
	if url == "" {
		t.Skip("GATEWAY_NATS_URL not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := Open(ctx, Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Embedded() {
		t.Fatal("external broker reports embedded")
	}
	if _, err := b.JetStream().AccountInfo(ctx); err != nil {
		t.Fatalf("AccountInfo: %v", err)
	}
}

// WithNATSOptions: an external NATS that wants credentials refuses a broker
// without them, and takes one given them as a connection option; the
// secret is in no error.
func TestOpenExternalWithNATSOptions(t *testing.T) {
	t.Parallel()
	const token = "s3cret-token"
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		Authorization: token, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS did not start")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := Open(ctx, Config{URL: srv.ClientURL()}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Open without the token = %v, want ErrUnavailable", err)
	}
	b, err := Open(ctx, Config{URL: srv.ClientURL()}, WithNATSOptions(nats.Token(token)))
	if err != nil {
		if strings.Contains(err.Error(), token) {
			t.Errorf("the error quotes the token: %v", err)
		}
		t.Fatalf("Open with the token: %v", err)
	}
	defer b.Close()
	if _, err := b.JetStream().AccountInfo(ctx); err != nil {
		t.Fatalf("AccountInfo: %v", err)
	}
}
