package idempotency

import (
	"io"
	"log/slog"
)

// Option configures Open.
type Option interface{ applyStore(*storeOptions) }

type optionFunc func(*storeOptions)

func (f optionFunc) applyStore(o *storeOptions) { f(o) }

type storeOptions struct {
	logger *slog.Logger
	owner  string
}

// WithLogger sets where the store reports takeovers and outcomes it could
// not record; default: discard. Keys are logged, fingerprints and outcomes
// never.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *storeOptions) {
		if l != nil {
			o.logger = l
		}
	})
}

// WithOwner names this Store in the entries it owns (default: host name,
// process id and a random suffix), so an operator reading the bucket sees
// which replica runs a request.
func WithOwner(name string) Option {
	return optionFunc(func(o *storeOptions) {
		if name != "" {
			o.owner = name
		}
	})
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
