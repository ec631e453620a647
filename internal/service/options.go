package service

import "strings"

// DefaultCurrencies are the currencies accepted when no WithCurrencies option
// is given. Upvest's current API knows only EUR; later versions add more, so
// the set is configuration, not code.
var DefaultCurrencies = []string{"EUR"}

// An Option configures the services made by the New* constructors.
type Option func(*options)

type options struct {
	currencies   map[string]bool
	currencyList string // for messages: "EUR, GBP"
}

func newOptions(opts []Option) options {
	var o options
	WithCurrencies(DefaultCurrencies...)(&o)
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// WithCurrencies replaces the set of ISO 4217 codes a request's currency
// field may hold (default DefaultCurrencies). Codes are compared exactly, as
// Upvest does; an empty list keeps the default.
func WithCurrencies(codes ...string) Option {
	return func(o *options) {
		if len(codes) == 0 {
			return
		}
		o.currencies = make(map[string]bool, len(codes))
		var list []string
		for _, c := range codes {
			if !o.currencies[c] {
				o.currencies[c] = true
				list = append(list, c)
			}
		}
		o.currencyList = strings.Join(list, ", ")
	}
}
