package reloadfile

import "time"

// An Option configures a Value in New.
type Option interface{ applyValue(*options) }

type optionFunc func(*options)

func (f optionFunc) applyValue(o *options) { f(o) }

type options struct {
	interval time.Duration
	report   func(error)
	reloaded func()
	now      func() time.Time
}

// WithCheckInterval sets how often, at most, Get looks at the files (default
// DefaultCheckInterval). Zero looks on every Get.
func WithCheckInterval(d time.Duration) Option {
	return optionFunc(func(o *options) {
		if d >= 0 {
			o.interval = d
		}
	})
}

// WithErrorReport is called with the error whenever the files could not be
// read or their new content did not parse, and the last good value was kept.
func WithErrorReport(report func(error)) Option {
	return optionFunc(func(o *options) { o.report = report })
}

// WithReloadReport is called after new content was parsed and taken.
func WithReloadReport(reloaded func()) Option {
	return optionFunc(func(o *options) { o.reloaded = reloaded })
}
