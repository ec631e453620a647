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

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
