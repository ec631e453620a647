package broker

import (
	"log/slog"

	"github.com/nats-io/nats.go"
)

// An Option configures Open.
type Option interface{ applyBroker(*options) }

type options struct {
	logger   *slog.Logger
	natsOpts []nats.Option
	fsync    func(path string) error
}

type optionFunc func(*options)

func (f optionFunc) applyBroker(o *options) { f(o) }

// WithLogger sets where connection changes and the embedded server's
// warnings go (default: nowhere).
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) {
		if l != nil {
			o.logger = l
		}
	})
}

// WithNATSOptions adds connection options for an external NATS, such as
// credentials or TLS (nats.UserCredentials, nats.RootCAs).
func WithNATSOptions(opts ...nats.Option) Option {
	return optionFunc(func(o *options) { o.natsOpts = append(o.natsOpts, opts...) })
}

// WithFsync replaces how GroupCommit's Sync flushes one file or directory
// (default: open it and fsync), so that a test can make the disk slow or
// fail.
func WithFsync(fsync func(path string) error) Option {
	return optionFunc(func(o *options) { o.fsync = fsync })
}
