package statusindex

import "log/slog"

// An Option configures Open and Tail.
type Option interface{ applyIndex(*options) }

type options struct {
	logger *slog.Logger
}

type optionFunc func(*options)

func (f optionFunc) applyIndex(o *options) { f(o) }

func newOptions(opts []Option) options {
	o := options{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if opt != nil {
			opt.applyIndex(&o)
		}
	}
	return o
}

// WithLogger sets where the index reports what it skips (default: nowhere).
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) {
		if l != nil {
			o.logger = l
		}
	})
}
