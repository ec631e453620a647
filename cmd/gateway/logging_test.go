package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// TestLogger: records come in the chosen format from the chosen level on,
// and neither a secret-named attribute nor a configured secret anywhere in
// a record (message, string, error) reaches the output.
func TestLogger(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			log := newLogger(&buf, Logging{Format: format, Level: slog.LevelInfo}, testSecret, testPass, "ab")
			log.Debug("not shown", "x", 1)
			log.Info("calling with "+testSecret, "authorization", "Bearer abc.def", "Client_Secret", "x",
				"err", errors.New("upvest said: "+testPass+" is wrong"), "detail", "prefix "+testSecret+" suffix",
				slog.Group("config", "passphrase", "p", "grpc_addr", "127.0.0.1:9090"), "note", "about tabs")
			log.Warn("warned", "method", "/x.Y/Z")
			out := buf.String()
			if strings.Contains(out, marker) || strings.Contains(out, "Bearer abc") {
				t.Errorf("a secret was logged:\n%s", out)
			}
			if strings.Contains(out, "not shown") || strings.Count(out, "\n") != 2 {
				t.Errorf("want 2 records from info on:\n%s", out)
			}
			for _, want := range []string{"<redacted>", "127.0.0.1:9090", "about tabs", "/x.Y/Z"} {
				if !strings.Contains(out, want) {
					t.Errorf("the log lacks %q:\n%s", want, out)
				}
			}
			for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
				if isJSON := json.Valid([]byte(line)); isJSON != (format == "json") {
					t.Errorf("%s line %q", format, line)
				}
			}
		})
	}
}
