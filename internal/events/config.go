package events

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
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

// LogConfig configures the event log's stream. The zero value is the
// defaults.
type LogConfig struct {
	Stream   string // stream name; default DefaultStream
	Subject  string // subject prefix; default DefaultSubject
	MaxAge   time.Duration
	MaxBytes int64
	// DuplicateWindow is how long an event id is remembered for
	// de-duplication; at most MaxAge.
	DuplicateWindow time.Duration
	// Replicas of the stream: 1 by default; 3 on a clustered external NATS.
	Replicas int
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

// A LogOption configures Open.
type LogOption interface{ applyLog(*logOptions) }

type logOptions struct {
	logger       *slog.Logger
	catchUps     int
	recentEvents int
}

type logOptionFunc func(*logOptions)

func (f logOptionFunc) applyLog(o *logOptions) { f(o) }

// WithLogger sets where the log reports (default: nowhere).
func WithLogger(l *slog.Logger) LogOption {
	return logOptionFunc(func(o *logOptions) {
		if l != nil {
			o.logger = l
		}
	})
}

// WithCatchUps sets how many subscribers may catch up from the log at once
// (default DefaultCatchUps), each with a JetStream consumer of its own: one
// that resumes from an older token, or that the tail let go of because its
// buffer was full. Others wait their turn, receiving heartbeats. It bounds
// the consumers a gateway holds on the stream (the tail, and these) and the
// work of a crowd of subscribers reconnecting at once.
func WithCatchUps(n int) LogOption {
	return logOptionFunc(func(o *logOptions) {
		if n > 0 {
			o.catchUps = n
		}
	})
}

// DefaultRecentEvents is how many of the latest events the log keeps in
// memory for subscribers that fell a little behind (see WithRecentEvents).
const DefaultRecentEvents = 4096

// WithRecentEvents sets how many of the latest events the log's tail keeps
// in memory (default DefaultRecentEvents; 0 keeps none): a subscriber whose
// buffer overflowed, or that resumes from a token, catches up from them
// without a consumer of its own or decoding anything again, as long as its
// position is among them. They cost their size in memory (about a
// kilobyte each), shared by every subscriber.
func WithRecentEvents(n int) LogOption {
	return logOptionFunc(func(o *logOptions) {
		if n >= 0 {
			o.recentEvents = n
		}
	})
}
