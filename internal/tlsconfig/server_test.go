package tlsconfig_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upvest-gateway/gateway/internal/logtest"
	"github.com/upvest-gateway/gateway/internal/tlsconfig"
	"github.com/upvest-gateway/gateway/internal/tlsconfig/tlstest"
)

// pki is a CA with a server certificate and client certificates, plus a
// foreign CA that issued a client certificate of its own.
type pki struct {
	ca, foreign     *tlstest.CA
	server          tlstest.Leaf
	client, outside tlstest.Leaf
	dir             string
	certFile        string
	keyFile         string
	caFile          string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{ca: tlstest.NewCA(t, "gateway test CA"), foreign: tlstest.NewCA(t, "foreign CA"), dir: t.TempDir()}
	p.server = p.ca.Server(t, "gateway")
	p.client = p.ca.Client(t, "payout-worker", "spiffe://bank.example/ns/payouts/sa/payout-worker")
	p.outside = p.foreign.Client(t, "payout-worker", "spiffe://bank.example/ns/payouts/sa/payout-worker")
	p.certFile, p.keyFile = p.server.Write(t, p.dir, "server")
	p.caFile = filepath.Join(p.dir, "clients-ca.pem")
	tlstest.WriteFile(t, p.caFile, p.ca.PEM)
	return p
}

// handshake is what one connection saw on both ends.
type handshake struct {
	serverErr error
	clientErr error
	state     tls.ConnectionState // the server's view
	peerCert  *x509.Certificate   // the client's view of the server certificate
}

func (h handshake) ok() bool { return h.serverErr == nil && h.clientErr == nil }

// serve accepts TLS connections with cfg on loopback; each connection's
// server-side result goes to the returned channel.
func serve(t *testing.T, cfg *tls.Config) (addr string, results <-chan handshake) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	ch := make(chan handshake, 16)
	go func() {
		for {
			conn, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				tc := tls.Server(conn, cfg)
				_ = tc.SetDeadline(time.Now().Add(30 * time.Second))
				err := tc.Handshake()
				if err == nil {
					_, err = tc.Write([]byte("ok\n"))
				}
				ch <- handshake{serverErr: err, state: tc.ConnectionState()}
			}()
		}
	}()
	return lis.Addr().String(), ch
}

// dial connects with client and reads the server's greeting: with TLS 1.3 a
// refused client certificate shows on the client only at the first read.
func dial(t *testing.T, addr string, client *tls.Config, results <-chan handshake) handshake {
	t.Helper()
	var clientErr error
	var peer *x509.Certificate
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", addr, client)
	if err == nil {
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		if certs := conn.ConnectionState().PeerCertificates; len(certs) > 0 {
			peer = certs[0]
		}
		var line string
		line, err = bufio.NewReader(conn).ReadString('\n')
		if err == nil && line != "ok\n" {
			err = fmt.Errorf("unexpected greeting %q", line)
		}
		conn.Close()
	}
	clientErr = err
	select {
	case h := <-results:
		h.clientErr, h.peerCert = clientErr, peer
		return h
	case <-time.After(30 * time.Second):
		t.Fatal("the server saw no connection")
		return handshake{}
	}
}

func TestMutualTLS(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	srv, err := tlsconfig.New(p.certFile, p.keyFile, tlsconfig.WithClientCAFile(p.caFile), tlsconfig.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	if !srv.MutualTLS() {
		t.Fatal("MutualTLS = false with a client CA bundle")
	}
	roots := p.ca.Pool()
	for _, tc := range []struct {
		name     string
		server   *tls.Config
		client   *tls.Config
		accepted bool
		alpn     string
	}{
		{"gRPC: no client certificate", srv.GRPC(), tlstest.ClientConfig(roots), false, ""},
		{"gRPC: certificate from a foreign CA", srv.GRPC(), tlstest.ClientConfig(roots, p.outside.TLS), false, ""},
		{"gRPC: certificate from a foreign CA, sent anyway", srv.GRPC(), forceCert(tlstest.ClientConfig(roots), p.outside.TLS), false, ""},
		{"gRPC: valid client certificate", srv.GRPC(), withALPN(tlstest.ClientConfig(roots, p.client.TLS), "h2"), true, "h2"},
		{"gRPC: valid, TLS 1.2", srv.GRPC(), maxTLS12(withALPN(tlstest.ClientConfig(roots, p.client.TLS), "h2")), true, "h2"},
		{"gRPC: TLS 1.1", srv.GRPC(), &tls.Config{RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11, Certificates: []tls.Certificate{p.client.TLS}}, false, ""},
		{"HTTP: no client certificate is allowed", srv.HTTP(), withALPN(tlstest.ClientConfig(roots), "http/1.1"), true, "http/1.1"},
		{"HTTP: certificate from a foreign CA, sent anyway", srv.HTTP(), forceCert(tlstest.ClientConfig(roots), p.outside.TLS), false, ""},
		{"HTTP: valid client certificate, h2", srv.HTTP(), withALPN(tlstest.ClientConfig(roots, p.client.TLS), "h2", "http/1.1"), true, "h2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr, results := serve(t, tc.server)
			h := dial(t, addr, tc.client, results)
			if h.ok() != tc.accepted {
				t.Fatalf("accepted = %v (server: %v, client: %v), want %v", h.ok(), h.serverErr, h.clientErr, tc.accepted)
			}
			if !tc.accepted {
				return
			}
			if h.state.NegotiatedProtocol != tc.alpn {
				t.Errorf("ALPN = %q, want %q", h.state.NegotiatedProtocol, tc.alpn)
			}
			if len(tc.client.Certificates) > 0 || tc.client.GetClientCertificate != nil {
				if len(h.state.VerifiedChains) == 0 {
					t.Fatal("the server has no verified chain for the client certificate")
				}
				if got := h.state.PeerCertificates[0].URIs[0].String(); got != "spiffe://bank.example/ns/payouts/sa/payout-worker" {
					t.Errorf("client URI SAN = %q", got)
				}
			}
		})
	}
}

func withALPN(c *tls.Config, protos ...string) *tls.Config {
	c.NextProtos = protos
	return c
}

// forceCert sends cert whatever CAs the server asks for: a Go client
// otherwise sends no certificate the server's CAs did not issue.
func forceCert(c *tls.Config, cert tls.Certificate) *tls.Config {
	c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	return c
}

func maxTLS12(c *tls.Config) *tls.Config {
	c.MaxVersion = tls.VersionTLS12
	return c
}

func TestServerOnlyTLS(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	srv, err := tlsconfig.New(p.certFile, p.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if srv.MutualTLS() {
		t.Fatal("MutualTLS = true without a client CA bundle")
	}
	addr, results := serve(t, srv.GRPC())
	if h := dial(t, addr, withALPN(tlstest.ClientConfig(p.ca.Pool()), "h2"), results); !h.ok() {
		t.Fatalf("refused: server %v, client %v", h.serverErr, h.clientErr)
	}
}

func TestReload(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	var logs logtest.Buffer
	srv, err := tlsconfig.New(p.certFile, p.keyFile,
		tlsconfig.WithClientCAFile(p.caFile),
		tlsconfig.WithCheckInterval(0),
		tlsconfig.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
	)
	if err != nil {
		t.Fatal(err)
	}
	addr, results := serve(t, srv.GRPC())
	roots := p.ca.Pool()
	client := func(certs ...tls.Certificate) *tls.Config {
		return withALPN(tlstest.ClientConfig(roots, certs...), "h2")
	}

	h := dial(t, addr, client(p.client.TLS), results)
	if !h.ok() || !h.peerCert.Equal(p.server.Cert) {
		t.Fatalf("first handshake: ok %v, presented the original certificate %v", h.ok(), h.peerCert != nil && h.peerCert.Equal(p.server.Cert))
	}

	// Replace the pair: the next handshake presents the new certificate.
	renewed := p.ca.Server(t, "gateway renewed")
	renewed.Write(t, p.dir, "server")
	h = dial(t, addr, client(p.client.TLS), results)
	if !h.ok() || !h.peerCert.Equal(renewed.Cert) {
		t.Fatalf("after replacing the files: ok %v (%v / %v), presented %v, want %v", h.ok(), h.serverErr, h.clientErr, subject(h.peerCert), renewed.Cert.Subject)
	}
	if got := srv.Certificate(); !got.Equal(renewed.Cert) {
		t.Errorf("Certificate() = %v, want the renewed one", got.Subject)
	}

	// A broken key keeps the renewed pair, and the log names the file, not the key.
	broken := append([]byte("-----BEGIN PRIVATE KEY-----\nQUJDREVGR0hJSktMTU5PUA==\n-----END PRIVATE KEY-----\n"), renewed.KeyPEM[:40]...)
	tlstest.WriteFile(t, p.keyFile, broken)
	h = dial(t, addr, client(p.client.TLS), results)
	if !h.ok() || !h.peerCert.Equal(renewed.Cert) {
		t.Fatalf("after a broken key: ok %v, presented %v, want the renewed certificate kept", h.ok(), subject(h.peerCert))
	}
	// A certificate that does not match the key is refused as well.
	mismatch := p.ca.Server(t, "mismatch")
	tlstest.WriteFile(t, p.keyFile, renewed.KeyPEM)
	tlstest.WriteFile(t, p.certFile, mismatch.CertPEM)
	h = dial(t, addr, client(p.client.TLS), results)
	if !h.ok() || !h.peerCert.Equal(renewed.Cert) {
		t.Fatalf("after a mismatched pair: ok %v, presented %v, want the renewed certificate kept", h.ok(), subject(h.peerCert))
	}
	if err := srv.Reload(); err != nil {
		t.Fatalf("Reload of content already seen = %v, want nil (reported once)", err)
	}

	// Replace the client CA bundle: clients of the old CA are refused, the new CA's accepted.
	tlstest.WriteFile(t, p.caFile, p.foreign.PEM)
	if h = dial(t, addr, forceCert(client(), p.client.TLS), results); h.ok() {
		t.Fatal("a client of the removed CA was accepted")
	}
	if h = dial(t, addr, client(p.outside.TLS), results); !h.ok() {
		t.Fatalf("a client of the new CA was refused: %v / %v", h.serverErr, h.clientErr)
	}
	// A bundle holding a key is refused, and the previous bundle kept.
	tlstest.WriteFile(t, p.caFile, append(append([]byte(nil), p.ca.PEM...), p.client.KeyPEM...))
	if h = dial(t, addr, client(p.outside.TLS), results); !h.ok() {
		t.Fatalf("after a bad bundle, a client of the kept CA was refused: %v / %v", h.serverErr, h.clientErr)
	}

	out := logs.String()
	for _, want := range []string{"certificate reloaded", "the new certificate or key does not load", "client CA bundle reloaded", "the new client CA bundle does not load", p.keyFile} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	assertNoKeyMaterial(t, out, p.server, renewed, mismatch, p.client)
	if strings.Contains(out, "QUJDREVGR0hJSktMTU5PUA") {
		t.Errorf("log quotes the broken key file:\n%s", out)
	}
}

func subject(c *x509.Certificate) string {
	if c == nil {
		return "nothing"
	}
	return c.Subject.String()
}

// assertNoKeyMaterial fails when text holds any line of base64 of a leaf's
// private key PEM.
func assertNoKeyMaterial(t *testing.T, text string, leaves ...tlstest.Leaf) {
	t.Helper()
	for _, l := range leaves {
		for _, line := range strings.Split(string(l.KeyPEM), "\n") {
			if len(line) >= 16 && !strings.HasPrefix(line, "-----") && strings.Contains(text, line[:16]) {
				t.Fatalf("key material %q… appears in:\n%s", line[:16], text)
			}
		}
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	other := p.ca.Server(t, "other")
	otherCert, otherKey := other.Write(t, p.dir, "other")
	keyInBundle := filepath.Join(p.dir, "key-in-bundle.pem")
	tlstest.WriteFile(t, keyInBundle, p.client.KeyPEM)
	empty := filepath.Join(p.dir, "empty.pem")
	tlstest.WriteFile(t, empty, []byte("no PEM here\n"))
	for _, tc := range []struct {
		name           string
		cert, key, cas string
		want           string
	}{
		{"no files", "", "", "", "both a certificate file and a key file"},
		{"missing certificate", filepath.Join(p.dir, "missing.crt"), p.keyFile, "", "missing.crt"},
		{"key of another certificate", p.certFile, otherKey, "", "do not load as a pair"},
		{"key in place of the certificate", otherKey, otherKey, "", "do not load as a pair"},
		{"key in the CA bundle", otherCert, otherKey, keyInBundle, `"PRIVATE KEY", not a CERTIFICATE`},
		{"empty CA bundle", otherCert, otherKey, empty, "no PEM certificate"},
		{"missing CA bundle", otherCert, otherKey, filepath.Join(p.dir, "missing-ca.pem"), "missing-ca.pem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := tlsconfig.New(tc.cert, tc.key, tlsconfig.WithClientCAFile(tc.cas))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tc.want)
			}
			assertNoKeyMaterial(t, err.Error(), p.client, other, p.server)
		})
	}
}

// TestHTTPServer serves HTTP/2 and HTTP/1.1 through net/http with the HTTP
// configuration, and shows a client certificate's chain reaching the handler.
func TestHTTPServer(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	srv, err := tlsconfig.New(p.certFile, p.keyFile, tlsconfig.WithClientCAFile(p.caFile))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{
		TLSConfig:         srv.HTTP(),
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			who := "anonymous"
			if len(r.TLS.VerifiedChains) > 0 {
				who = r.TLS.VerifiedChains[0][0].Subject.CommonName
			}
			fmt.Fprintf(w, "%s %s", r.Proto, who)
		}),
	}
	go func() { _ = hs.ServeTLS(lis, "", "") }()
	t.Cleanup(func() { hs.Close() })

	for _, tc := range []struct {
		name  string
		h2    bool
		certs []tls.Certificate
		want  string
	}{
		{"HTTP/2 with a client certificate", true, []tls.Certificate{p.client.TLS}, "HTTP/2.0 payout-worker"},
		{"HTTP/1.1 without one", false, nil, "HTTP/1.1 anonymous"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tr := &http.Transport{TLSClientConfig: tlstest.ClientConfig(p.ca.Pool(), tc.certs...), ForceAttemptHTTP2: tc.h2}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get("https://" + lis.Addr().String() + "/")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body strings.Builder
			if _, err := bufio.NewReader(resp.Body).WriteTo(&body); err != nil {
				t.Fatal(err)
			}
			if body.String() != tc.want {
				t.Fatalf("got %q, want %q", body.String(), tc.want)
			}
		})
	}
}
