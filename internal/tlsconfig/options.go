package tlsconfig

import (
	"log/slog"
	"time"

	"github.com/upvest-gateway/gateway/internal/reloadfile"
)

// An Option configures a Server in New.
type Option interface{ applyServer(*options) }

type optionFunc func(*options)

func (f optionFunc) applyServer(o *options) { f(o) }

type options struct {
	clientCAFile  string
	logger        *slog.Logger
	checkInterval time.Duration
}

// WithClientCAFile turns on mutual TLS: clients must present a certificate
// issued by one of the CAs in the PEM bundle at path (see Server.GRPC and
// Server.HTTP for where it is required). The bundle is reloaded like the
// certificate. An empty path leaves mutual TLS off.
func WithClientCAFile(path string) Option {
	return optionFunc(func(o *options) { o.clientCAFile = path })
}

// WithLogger sets where reloads and failed reloads are reported (default
// slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) {
		if l != nil {
			o.logger = l
		}
	})
}

// WithCheckInterval sets how often, at most, a handshake looks at the files
// (default reloadfile.DefaultCheckInterval); zero looks on every handshake.
func WithCheckInterval(d time.Duration) Option {
	return optionFunc(func(o *options) {
		if d >= 0 {
			o.checkInterval = d
		}
	})
}

func newOptions(opts []Option) options {
	o := options{logger: slog.Default(), checkInterval: reloadfile.DefaultCheckInterval}
	for _, opt := range opts {
		if opt != nil {
			opt.applyServer(&o)
		}
	}
	return o
}
