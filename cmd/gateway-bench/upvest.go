package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/upvest-gateway/gateway/internal/loadtest"
	"github.com/upvest-gateway/gateway/internal/upstream"
	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
	"github.com/upvest-gateway/gateway/internal/upvestsim"
)

// keyNames are the tenant signing keys measured: Upvest's documented
// curve, the one of Upvest's own tooling, and Ed25519.
var keyNames = []string{"P-521", "P-256", "Ed25519"}

func generateKey(name string) (crypto.Signer, error) {
	switch name {
	case "P-521":
		return ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "P-256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "Ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("unknown key %q", name)
}

// tenant is the Upvest tenant the gateway acts for: its credentials and
// a signing key of each kind, all registered in the simulator.
type tenant struct {
	clientID, clientSecret string
	keys                   map[string]crypto.Signer // by key name
}

func (t *tenant) keyID(name string) string {
	return "bench-" + strings.ToLower(strings.ReplaceAll(name, "-", ""))
}

// simulator is the Upvest simulator served on loopback from this process.
type simulator struct {
	sim      *upvestsim.Sim
	url      string
	server   *http.Server
	upstream *upstreamTLS // nil: plain HTTP
}

// startSimulator serves a simulator that knows the tenant's keys, checks
// one signature in verifyOneIn, and publishes the webhook signer's key;
// over TLS with up.
func startSimulator(t *tenant, webhooks *loadtest.WebhookSigner, verifyOneIn int, up *upstreamTLS) (*simulator, error) {
	keys := map[string]crypto.PublicKey{}
	for name, k := range t.keys {
		keys[t.keyID(name)] = k.Public()
	}
	sim, err := upvestsim.New(upvestsim.Config{
		ClientID:     t.clientID,
		ClientSecret: t.clientSecret,
		TenantKeys:   keys,
		VerifyOneIn:  verifyOneIn,
		VerifyKeys:   webhooks.Keys(),
		MaxRecords:   1000,
	})
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		sim.Close()
		return nil, err
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	return &simulator{sim: sim, url: up.serve(srv, lis), server: srv, upstream: up}, nil
}

func (s *simulator) close() {
	_ = s.server.Close()
	s.sim.Close()
}

// directClient is the upstream client alone, signing with the named key:
// the limit the gateway's faces are measured against.
func (t *tenant) directClient(sim *simulator, keyName string) (*upstream.Client, error) {
	signer, err := httpsig.NewSigner(t.keys[keyName], t.keyID(keyName))
	if err != nil {
		return nil, err
	}
	var opts []upstream.Option
	if sim.upstream != nil { // else the gateway's own default transport
		opts = append(opts, upstream.WithTransport(loopbackTransport(256, sim.upstream.roots)))
	}
	return upstream.New(upstream.Config{BaseURL: sim.url, ClientID: t.clientID, ClientSecret: t.clientSecret, Signer: signer}, opts...)
}

// writeKey writes the named key as the gateway reads it: PKCS#8 PEM,
// readable by its owner alone.
func (t *tenant) writeKey(dir, keyName string) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(t.keys[keyName])
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, t.keyID(keyName)+".pem")
	return path, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

func newTenant() (*tenant, error) {
	t := &tenant{clientID: uuid.NewString(), clientSecret: rand.Text(), keys: map[string]crypto.Signer{}}
	for _, name := range keyNames {
		k, err := generateKey(name)
		if err != nil {
			return nil, err
		}
		t.keys[name] = k
	}
	return t, nil
}

// SigningBound is what one signature costs with a key, and the calls per
// second a machine's cores could sign at most.
type SigningBound struct {
	Key       string        `json:"key"`
	SignTime  time.Duration `json:"sign_ns"`
	PerSecond float64       `json:"bound_per_second"` // cores ÷ SignTime
}

// signingBound times the signature of a create as the gateway makes it
// (headers, body, digest and signing), on one core, for about d.
func signingBound(key crypto.Signer, keyName string, cores int, d time.Duration) (SigningBound, error) {
	signer, err := httpsig.NewSigner(key, "bench")
	if err != nil {
		return SigningBound{}, err
	}
	body := []byte(`{"account_group_id":"` + uuid.NewString() + `","cash_amount":"10.00","currency":"EUR"}`)
	sign := func() error {
		req, err := http.NewRequest(http.MethodPost, "https://sandbox.upvest.co/payments/topups", nil)
		if err != nil {
			return err
		}
		h := req.Header
		h.Set("Accept", "application/json")
		h.Set("Authorization", "Bearer "+rand.Text())
		h.Set("Content-Type", "application/json")
		h.Set("Idempotency-Key", uuid.NewString())
		h.Set("Upvest-Client-Id", uuid.NewString())
		return signer.Sign(req, bytes.Clone(body))
	}
	n := 0
	start := time.Now()
	for time.Since(start) < d || n < 10 {
		if err := sign(); err != nil {
			return SigningBound{}, err
		}
		n++
	}
	per := time.Since(start) / time.Duration(n)
	return SigningBound{Key: keyName, SignTime: per, PerSecond: float64(cores) / per.Seconds()}, nil
}
