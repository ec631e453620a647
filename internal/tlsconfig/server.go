package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/upvest-gateway/gateway/internal/reloadfile"
)

// MinVersion is the oldest TLS version accepted.
const MinVersion = tls.VersionTLS12

// cipherSuites are the TLS 1.2 suites offered: forward secret AEADs only.
// TLS 1.3 suites are not configurable and all good.
var cipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// Server is the server side of TLS with reloadable files. It is safe for
// concurrent use.
type Server struct {
	log       *slog.Logger
	keyPair   *reloadfile.Value[*tls.Certificate]
	clientCAs *reloadfile.Value[*x509.CertPool] // nil without mutual TLS
	grpc      listener
	http      listener
}

// listener is one listener's kind of handshake configuration.
type listener struct {
	nextProtos []string
	clientAuth tls.ClientAuthType
	built      atomic.Pointer[builtConfig]
}

// builtConfig is the handshake configuration for one pair and bundle, built
// once and then shared by every handshake until either changes.
type builtConfig struct {
	keyPair   *tls.Certificate
	clientCAs *x509.CertPool
	config    *tls.Config
}

// New loads the certificate chain and key (PEM files, the chain leaf first)
// and, with WithClientCAFile, the client CA bundle. Any of them failing to
// load is an error: there is no earlier good one to keep.
func New(certFile, keyFile string, opts ...Option) (*Server, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("tlsconfig: both a certificate file and a key file are required")
	}
	o := newOptions(opts)
	s := &Server{log: o.logger}
	var err error
	s.keyPair, err = reloadfile.New(parseKeyPair, []string{certFile, keyFile},
		reloadfile.WithCheckInterval(o.checkInterval),
		reloadfile.WithErrorReport(func(err error) {
			s.log.Error("tls: the new certificate or key does not load; still serving the previous pair",
				"cert_file", certFile, "key_file", keyFile, "err", err)
		}),
		reloadfile.WithReloadReport(func() {
			leaf := s.keyPair.Current().Leaf
			s.log.Info("tls: certificate reloaded", "cert_file", certFile,
				"subject", leaf.Subject.String(), "not_after", leaf.NotAfter)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("tlsconfig: loading %s and %s: %w", certFile, keyFile, err)
	}
	clientAuthGRPC, clientAuthHTTP := tls.NoClientCert, tls.NoClientCert
	if o.clientCAFile != "" {
		s.clientCAs, err = reloadfile.New(parseCABundle, []string{o.clientCAFile},
			reloadfile.WithCheckInterval(o.checkInterval),
			reloadfile.WithErrorReport(func(err error) {
				s.log.Error("tls: the new client CA bundle does not load; still using the previous one",
					"client_ca_file", o.clientCAFile, "err", err)
			}),
			reloadfile.WithReloadReport(func() {
				s.log.Info("tls: client CA bundle reloaded", "client_ca_file", o.clientCAFile)
			}),
		)
		if err != nil {
			return nil, fmt.Errorf("tlsconfig: loading %s: %w", o.clientCAFile, err)
		}
		clientAuthGRPC, clientAuthHTTP = tls.RequireAndVerifyClientCert, tls.VerifyClientCertIfGiven
	}
	s.grpc = listener{nextProtos: []string{"h2"}, clientAuth: clientAuthGRPC}
	s.http = listener{nextProtos: []string{"h2", "http/1.1"}, clientAuth: clientAuthHTTP}
	return s, nil
}

// MutualTLS reports whether a client CA bundle is configured.
func (s *Server) MutualTLS() bool { return s.clientCAs != nil }

// GRPC is the configuration for the gRPC listener: ALPN h2 only, and with a
// client CA bundle a verified client certificate is required. Use it as
// credentials.NewTLS(s.GRPC()).
func (s *Server) GRPC() *tls.Config { return s.config(&s.grpc) }

// HTTP is the configuration for the HTTP listener, e.g. with
// http.Server.ServeTLS(lis, "", ""): ALPN h2 and http/1.1, and with a client
// CA bundle a client certificate is verified when presented (then in
// r.TLS.VerifiedChains) but not required.
func (s *Server) HTTP() *tls.Config { return s.config(&s.http) }

// Reload reads the files now rather than at the next handshake after the
// check interval (e.g. on SIGHUP). It returns the first error that kept a
// previous pair or bundle.
func (s *Server) Reload() error {
	_, err := s.keyPair.Reload()
	if s.clientCAs != nil {
		if _, caErr := s.clientCAs.Reload(); err == nil {
			err = caErr
		}
	}
	return err
}

// Certificate is the leaf certificate currently served, e.g. to export its
// expiry as a metric.
func (s *Server) Certificate() *x509.Certificate { return s.keyPair.Current().Leaf }

// config is the listener-level configuration: every handshake gets the
// newest pair and bundle through GetConfigForClient.
func (s *Server) config(l *listener) *tls.Config {
	return &tls.Config{
		MinVersion:   MinVersion,
		CipherSuites: cipherSuites,
		NextProtos:   l.nextProtos,
		ClientAuth:   l.clientAuth,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.handshakeConfig(l), nil
		},
	}
}

func (s *Server) handshakeConfig(l *listener) *tls.Config {
	keyPair := s.keyPair.Get()
	var clientCAs *x509.CertPool
	if s.clientCAs != nil {
		clientCAs = s.clientCAs.Get()
	}
	if b := l.built.Load(); b != nil && b.keyPair == keyPair && b.clientCAs == clientCAs {
		return b.config
	}
	cfg := &tls.Config{
		MinVersion:   MinVersion,
		CipherSuites: cipherSuites,
		NextProtos:   l.nextProtos,
		Certificates: []tls.Certificate{*keyPair},
		ClientAuth:   l.clientAuth,
		ClientCAs:    clientCAs,
		// With client certificates, every connection is verified against the
		// current bundle: a resumed session would skip that after a CA is
		// removed.
		SessionTicketsDisabled: clientCAs != nil,
	}
	l.built.Store(&builtConfig{keyPair: keyPair, clientCAs: clientCAs, config: cfg})
	return cfg
}
