package events

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Defaults of LogConfig.
const (
	DefaultStream   = "UPVEST_EVENTS"
	DefaultMaxAge   = 7 * 24 * time.Hour
	DefaultMaxBytes = 1 << 30
	// DefaultDuplicateWindow is far longer than Upvest's retry backoff (1, 2,
	// 3, 5, 8 … up to 600 s between attempts), so a delivery retried for
	// hours is still recognised as a duplicate.
	DefaultDuplicateWindow = 24 * time.Hour
)

// LogConfig configures the event log. The zero value (plus DataDir) is an
// embedded server with the defaults.
type LogConfig struct {
	// NATSURL is an external NATS (cluster) with JetStream, e.g.
	// GATEWAY_NATS_URL; several gateway replicas on one URL share one log.
	// "" runs an embedded server in the process.
	NATSURL string
	// DataDir holds the embedded server's JetStream file store (under
	// DataDir/jetstream). Required when NATSURL is "".
	DataDir  string
	Stream   string // stream name; default DefaultStream
	Subject  string // subject prefix; default DefaultSubject
	MaxAge   time.Duration
	MaxBytes int64
	// DuplicateWindow is how long an event id is remembered for
	// de-duplication; at most MaxAge.
	DuplicateWindow time.Duration
	// Replicas of the stream: 1 by default; 3 on a clustered external NATS.
	Replicas int
	// SyncAlways makes the embedded server fsync every write before it
	// acknowledges it, so an acknowledged event survives a power loss, not
	// just a crash of the process. It costs throughput; see BenchmarkAppend.
	SyncAlways bool
}

func (c LogConfig) withDefaults() (LogConfig, error) {
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.Subject == "" {
		c.Subject = DefaultSubject
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = min(DefaultDuplicateWindow, c.MaxAge)
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	switch {
	case c.NATSURL == "" && c.DataDir == "":
		return c, errors.New("events: DataDir is required for the embedded NATS server")
	case strings.ContainsAny(c.Stream, ". *>\t\r\n/\\"):
		return c, fmt.Errorf("events: Stream %q is not a valid stream name", c.Stream)
	case !validPrefix(c.Subject):
		return c, fmt.Errorf("events: Subject %q is not a literal subject prefix", c.Subject)
	case c.MaxAge < 0:
		return c, errors.New("events: MaxAge must be positive")
	case c.MaxBytes < 0:
		return c, errors.New("events: MaxBytes must be positive")
	case c.DuplicateWindow < 0 || c.DuplicateWindow > c.MaxAge:
		return c, errors.New("events: DuplicateWindow must be positive and at most MaxAge")
	case c.Replicas < 1 || c.Replicas > 5:
		return c, errors.New("events: Replicas must be between 1 and 5")
	case c.NATSURL == "" && c.Replicas != 1:
		return c, errors.New("events: the embedded NATS server has one replica")
	}
	return c, nil
}

func validPrefix(p string) bool {
	if p == "" {
		return false
	}
	for _, tok := range strings.Split(p, ".") {
		if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") {
			return false
		}
	}
	return true
}

// LogOption configures Open.
type LogOption interface{ applyLog(*logOptions) }

// ReceiverOption configures NewReceiver.
type ReceiverOption interface{ applyReceiver(*Receiver) }

// Option configures both Open and NewReceiver.
type Option interface {
	LogOption
	ReceiverOption
}

type logOptions struct {
	logger   *slog.Logger
	natsOpts []nats.Option
}

type loggerOption struct{ l *slog.Logger }

func (o loggerOption) applyLog(lo *logOptions)   { lo.logger = o.l }
func (o loggerOption) applyReceiver(r *Receiver) { r.logger = o.l }

// WithLogger sets where the log and the receiver report; default: discard.
func WithLogger(l *slog.Logger) Option {
	if l == nil {
		l = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return loggerOption{l}
}

type natsOption []nats.Option

func (o natsOption) applyLog(lo *logOptions) { lo.natsOpts = append(lo.natsOpts, o...) }

// WithNATSOptions adds connection options for an external NATS, such as
// credentials or TLS (nats.UserCredentials, nats.RootCAs).
func WithNATSOptions(opts ...nats.Option) LogOption { return natsOption(opts) }
