package main

import (
	"io"
	"log/slog"
	"strings"
)

// secretKeys are attribute names whose values are never logged, whoever
// logs them: a second line of defence behind the code that never does.
var secretKeys = map[string]bool{
	"authorization": true, "client_secret": true, "secret": true, "passphrase": true, "password": true,
	"access_token": true, "token": true, "bearer": true, "private_key": true,
}

const redactedValue = "<redacted>"

// newLogger writes records to w in l's format from l's level on. Values of
// secretKeys, and any occurrence of one of secrets (the configured client
// secret and passphrase), are replaced in every record.
func newLogger(w io.Writer, l Logging, secrets ...string) *slog.Logger {
	var known []string
	for _, s := range secrets {
		if len(s) >= 4 { // shorter would redact common words
			known = append(known, s)
		}
	}
	opts := &slog.HandlerOptions{Level: l.Level, ReplaceAttr: redactor(known)}
	if l.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// redactor is the handlers' ReplaceAttr: it hides the values of secretKeys
// and the known secrets wherever they occur in a string value, the message
// included.
func redactor(secrets []string) func([]string, slog.Attr) slog.Attr {
	return func(_ []string, a slog.Attr) slog.Attr {
		if secretKeys[strings.ToLower(a.Key)] {
			return slog.String(a.Key, redactedValue)
		}
		if len(secrets) == 0 {
			return a
		}
		switch a.Value.Kind() {
		case slog.KindString:
			if s := a.Value.String(); containsAny(s, secrets) {
				return slog.String(a.Key, redactAll(s, secrets))
			}
		case slog.KindAny:
			// An error, or a value whose text is made when it is written.
			if err, ok := a.Value.Any().(error); ok && containsAny(err.Error(), secrets) {
				return slog.String(a.Key, redactAll(err.Error(), secrets))
			}
		}
		return a
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func redactAll(s string, secrets []string) string {
	for _, sec := range secrets {
		s = strings.ReplaceAll(s, sec, redactedValue)
	}
	return s
}
