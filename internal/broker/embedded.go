package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// startEmbedded runs a NATS server with JetStream inside the process, with
// no network listener: the gateway is its only client, through an in-process
// pipe, so nothing else can reach or tamper with the log.
func startEmbedded(ctx context.Context, cfg Config, logger *slog.Logger) (*server.Server, *nats.Conn, error) {
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
	fatal := make(chan string, 1)
	srv.SetLoggerV2(serverLogger{l: logger, fatal: fatal}, false, false, false)
	srv.Start()
	wait := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		wait = time.Until(d)
	}
	ready := make(chan bool, 1)
	go func() { ready <- srv.ReadyForConnections(wait) }()
	var failure string
	select {
	case ok := <-ready:
		if !ok {
			failure = "did not start"
		}
	case msg := <-fatal:
		// A fatal error (e.g. a storage directory it cannot write) is
		// final: waiting out the start-up time would only delay the exit.
		failure = "cannot start: " + msg
	}
	if failure != "" {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, nil, errors.New("broker: embedded NATS server " + failure)
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

// serverLogger forwards the embedded server's warnings and errors; its
// notices are routine start-up chatter and go to debug. A fatal error is
// also handed to fatal, once.
type serverLogger struct {
	l     *slog.Logger
	fatal chan<- string
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
