// Package broker connects the gateway to NATS JetStream, the engine under
// both its event log and its idempotency store: a server embedded in the
// process by default, or an external NATS (cluster) that several gateway
// replicas share.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrUnavailable wraps failures to reach NATS. Callers answer 503 or
// UNAVAILABLE: retrying later is safe.
var ErrUnavailable = errors.New("broker: NATS unavailable")

// publishTimeout bounds how long an unacknowledged asynchronous publish is
// tracked when the caller's context has no deadline.
const publishTimeout = 30 * time.Second

// Config says which NATS to use.
type Config struct {
	// URL is an external NATS (cluster) with JetStream: comma-separated
	// server URLs, e.g. GATEWAY_NATS_URL. "" runs a server embedded in the
	// process. It may carry credentials, so no error quotes it.
	URL string
	// DataDir holds the embedded server's JetStream files (under
	// DataDir/jetstream). Required when URL is "".
	DataDir string
	// SyncAlways makes the embedded server fsync every write before it
	// acknowledges it, so an acknowledged write survives a power loss, not
	// just a crash of the process. Every write pays a whole fsync.
	SyncAlways bool
	// GroupCommit gets the same guarantee for a writer that asks for it
	// (Sync), at the cost of one fsync pass for all the writes acknowledged
	// before it instead of one fsync per write: the embedded server writes
	// each message to the operating system before acknowledging it, and
	// Sync makes what was acknowledged durable. Writes of a writer that
	// never calls Sync survive a crash of the process, and a power loss once
	// the server's periodic sync (every two minutes) or a later Sync has
	// passed. It excludes SyncAlways; with an external NATS durability
	// comes from replication and both are ignored.
	GroupCommit bool
}

// Broker is an open connection to JetStream. It is safe for concurrent use.
type Broker struct {
	srv *server.Server // nil with an external NATS
	nc  *nats.Conn
	js  jetstream.JetStream
	// store makes acknowledged writes durable with GroupCommit; nil
	// otherwise.
	store *storeSyncer

	closeOnce sync.Once
	closed    chan struct{}
}

// Open starts the embedded server, or connects to the external one, and
// returns when JetStream can be used.
func Open(ctx context.Context, cfg Config, opts ...Option) (*Broker, error) {
	o := options{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if opt != nil {
			opt.applyBroker(&o)
		}
	}
	b := &Broker{closed: make(chan struct{})}
	var err error
	if strings.TrimSpace(cfg.URL) == "" {
		switch {
		case cfg.DataDir == "":
			return nil, errors.New("broker: DataDir is required for the embedded NATS server")
		case cfg.SyncAlways && cfg.GroupCommit:
			return nil, errors.New("broker: SyncAlways and GroupCommit exclude each other")
		}
		b.srv, b.nc, err = startEmbedded(ctx, cfg, o.logger)
		if cfg.GroupCommit {
			b.store = newStoreSyncer(filepath.Join(cfg.DataDir, "jetstream"))
			if o.fsync != nil {
				b.store.fsync = o.fsync
			}
		}
	} else {
		b.nc, err = connect(ctx, cfg.URL, o)
	}
	if err != nil {
		return nil, err
	}
	b.js, err = jetstream.New(b.nc, jetstream.WithPublishAsyncTimeout(publishTimeout))
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return b, nil
}

func connect(ctx context.Context, url string, o options) (*nats.Conn, error) {
	natsOpts := append([]nats.Option{
		nats.Name("upvest-gateway"),
		nats.MaxReconnects(-1), // an outage is temporary: callers answer 503 meanwhile
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				o.logger.Warn("broker: disconnected from NATS", "err", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { o.logger.Info("broker: reconnected to NATS") }),
	}, o.natsOpts...)
	if d, ok := ctx.Deadline(); ok && time.Until(d) > 0 {
		natsOpts = append(natsOpts, nats.Timeout(time.Until(d)))
	}
	nc, err := nats.Connect(url, natsOpts...)
	if err != nil {
		// nats errors do not echo the URL, which may hold credentials.
		return nil, fmt.Errorf("%w: connecting: %w", ErrUnavailable, err)
	}
	return nc, nil
}

// Conn is the NATS connection.
func (b *Broker) Conn() *nats.Conn { return b.nc }

// JetStream is the JetStream context on Conn.
func (b *Broker) JetStream() jetstream.JetStream { return b.js }

// Sync returns once every write the server acknowledged before the call is
// durable, as far as the configuration promises it: with GroupCommit after
// an fsync pass shared with concurrent callers (see Config.GroupCommit).
// Otherwise there is nothing to wait for: SyncAlways synced each write,
// an external cluster replicates them, and without either no more than
// surviving a crash of the process was promised. Its errors wrap
// ErrUnavailable (ctx done) or ErrStorage (the disk failed; sticky).
func (b *Broker) Sync(ctx context.Context) error {
	if b.store == nil {
		return nil
	}
	if b.IsClosed() {
		return fmt.Errorf("%w: closed", ErrUnavailable)
	}
	return b.store.sync(ctx)
}

// DurableAt reports whether every write the server acknowledged by t is
// known to be durable (a Sync pass that started after t has completed), so
// that a reader can hand on what it had read by t without calling Sync.
// Always true without GroupCommit (see Sync).
func (b *Broker) DurableAt(t time.Time) bool {
	return b.store == nil || b.store.durableAt(t)
}

// StorageErr is the failure that made Sync fail for good (wrapping
// ErrStorage), or nil: a readiness probe reports it.
func (b *Broker) StorageErr() error {
	if b.store == nil {
		return nil
	}
	b.store.mu.Lock()
	defer b.store.mu.Unlock()
	return b.store.failed
}

// Embedded reports whether the server runs in this process.
func (b *Broker) Embedded() bool { return b.srv != nil }

// Closed is closed once Close has been called.
func (b *Broker) Closed() <-chan struct{} { return b.closed }

// IsClosed reports whether Close has been called.
func (b *Broker) IsClosed() bool {
	select {
	case <-b.closed:
		return true
	default:
		return false
	}
}

// Close closes the connection and shuts the embedded server down cleanly.
// It is safe to call more than once.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		close(b.closed)
		if b.nc != nil {
			b.nc.Close()
		}
		if b.srv != nil {
			b.srv.Shutdown()
			b.srv.WaitForShutdown()
		}
	})
	return nil
}
