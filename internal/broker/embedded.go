package broker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// startEmbedded runs a NATS server with JetStream inside the process, with
// no network listener: the gateway is its only client, through an in-process
// pipe, so nothing else can reach or tamper with the log.
func startEmbedded(ctx context.Context, cfg Config, logger *slog.Logger) (*server.Server, *nats.Conn, error) {
	if err := checkDataDir(cfg.DataDir); err != nil {
		return nil, nil, err
	}
	opts := &server.Options{
		ServerName: "upvest-gateway",
		DontListen: true,
		JetStream:  true,
		StoreDir:   cfg.DataDir, // the server keeps its files under StoreDir/jetstream
		SyncAlways: cfg.SyncAlways,
		NoSigs:     true, // signals belong to the gateway, not to the library
		NoLog:      true,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("broker: embedded NATS server: %w", err)
	}
	sl := serverLogger{l: logger, fatal: make(chan string, 1)}
	srv.SetLoggerV2(sl, false, false, false)
	srv.Start()
	wait := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		wait = time.Until(d)
	}
	if err := awaitReady(srv, sl.fatal, wait); err != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, nil, err
	}
	nc, err := nats.Connect("",
		nats.InProcessServer(srv),
		nats.Name("upvest-gateway"),
		nats.NoReconnect(), // there is nothing to reconnect to once it is gone
	)
	if err != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, nil, fmt.Errorf("broker: connecting to the embedded NATS server: %w", err)
	}
	return srv, nc, nil
}

// ErrDataDir marks a data directory the embedded server cannot keep its
// files in: a fault of the deployment, not of NATS.
var ErrDataDir = errors.New("broker: the data directory is not usable")

// checkDataDir makes sure the embedded server can write its files under
// dir before it starts: the server reports a store it cannot create only
// as a fatal log line and then never becomes ready, which would be found
// out only at the end of the start-up timeout.
func checkDataDir(dir string) error {
	js := filepath.Join(dir, "jetstream")
	if err := os.MkdirAll(js, 0o750); err != nil {
		return fmt.Errorf("%w: %q: %v", ErrDataDir, dir, reason(err))
	}
	f, err := os.CreateTemp(js, ".write-check-*")
	if err != nil {
		return fmt.Errorf("%w: %q is not writable: %v", ErrDataDir, dir, reason(err))
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return nil
}

// reason is what went wrong with a path, without the path again.
func reason(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// awaitReady waits until srv takes connections, but no longer than wait,
// and not at all once it has reported a fatal error.
func awaitReady(srv *server.Server, fatal <-chan string, wait time.Duration) error {
	const slice = 50 * time.Millisecond
	deadline := time.Now().Add(wait)
	for {
		select {
		case msg := <-fatal:
			return fmt.Errorf("broker: embedded NATS server did not start: %s", msg)
		default:
		}
		if srv.ReadyForConnections(min(slice, max(time.Until(deadline), time.Millisecond))) {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("broker: embedded NATS server did not start in time")
		}
	}
}

// serverLogger forwards the embedded server's warnings and errors; its
// notices are routine start-up chatter and go to debug. A fatal error is
// also passed on to fatal, which start-up waits on.
type serverLogger struct {
	l     *slog.Logger
	fatal chan string
}

func (s serverLogger) Noticef(format string, v ...any) {
	s.l.Debug("nats: " + fmt.Sprintf(format, v...))
}
func (s serverLogger) Warnf(format string, v ...any) { s.l.Warn("nats: " + fmt.Sprintf(format, v...)) }
func (s serverLogger) Errorf(format string, v ...any) {
	s.l.Error("nats: " + fmt.Sprintf(format, v...))
}
func (s serverLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	s.l.Error("nats: fatal: " + msg)
	select {
	case s.fatal <- msg:
	default:
	}
}
func (s serverLogger) Debugf(format string, v ...any) {}
func (s serverLogger) Tracef(format string, v ...any) {}
