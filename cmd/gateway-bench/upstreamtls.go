package main

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/upvest-gateway/gateway/internal/tlsconfig/tlstest"
)

// upstreamTLS serves the bench's upstreams (the simulator, and the bare
// proxies' server) over TLS with HTTP/2, as the gateway reaches Upvest:
// -upstream-tls. Without it they speak plain HTTP/1.1, which costs less
// per call on loopback but is not what production runs.
type upstreamTLS struct {
	server *tls.Config
	roots  *x509.CertPool
	caFile string // the certificate as PEM, for SSL_CERT_FILE
	// Requests served, by protocol: that HTTP/2 is what was measured.
	http2, http1 atomic.Int64
}

// newUpstreamTLS makes a CA and a certificate for 127.0.0.1, and writes the
// CA to dir.
func newUpstreamTLS(dir string) (*upstreamTLS, error) {
	ca, err := tlstest.MakeCA("gateway-bench upstream CA")
	if err != nil {
		return nil, err
	}
	leaf, err := ca.MakeServer("gateway-bench upstream")
	if err != nil {
		return nil, err
	}
	caFile := filepath.Join(dir, "upstream-ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		return nil, err
	}
	return &upstreamTLS{
		server: &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12},
		roots:  ca.Pool(),
		caFile: caFile,
	}, nil
}

// serve serves h on lis, over TLS when u is set, and returns its base URL.
func (u *upstreamTLS) serve(srv *http.Server, lis net.Listener) string {
	if u == nil {
		go func() { _ = srv.Serve(lis) }()
		return "http://" + lis.Addr().String()
	}
	srv.TLSConfig = u.server.Clone() // net/http's HTTP/2 set-up writes to it
	h := srv.Handler
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 {
			u.http2.Add(1)
		} else {
			u.http1.Add(1)
		}
		h.ServeHTTP(w, r)
	})
	go func() { _ = srv.ServeTLS(lis, "", "") }()
	return "https://" + lis.Addr().String()
}

// loopbackTransport is the bench's client transport to a server on
// loopback: up to maxConns connections kept, HTTP/2 when the server is
// served over TLS, trusting roots (nil: the system's, which SSL_CERT_FILE
// sets in a child process).
func loopbackTransport(maxConns int, roots *x509.CertPool) *http.Transport {
	t := &http.Transport{MaxIdleConns: maxConns, MaxIdleConnsPerHost: maxConns, IdleConnTimeout: time.Minute, ForceAttemptHTTP2: true}
	if roots != nil {
		t.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	return t
}

// env is what a child process needs to trust the upstream: Go reads its
// roots from SSL_CERT_FILE.
func (u *upstreamTLS) env() []string {
	if u == nil {
		return nil
	}
	return []string{"SSL_CERT_FILE=" + u.caFile}
}
