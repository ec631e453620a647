package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
	"github.com/upvest-gateway/gateway/internal/upvestsim"
)

// syncBuffer is a bytes.Buffer the gateway and the test may use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSecretsNeverLeak runs the gateway with known secrets (client secret
// and key passphrase from files, an encrypted PKCS#8 signing key, callers'
// bearer tokens), provokes the failures they could leak through (Upvest
// refusing the credentials, tokens refused, a wrong passphrase), and finds
// none of them in any log line or any error a caller gets.
func TestSecretsNeverLeak(t *testing.T) {
	dir := t.TempDir()
	// The tenant key, as OpenSSL 3 writes a protected one.
	const keyPass = "correct-horse"
	keyPEM, err := os.ReadFile("../../internal/upstream/httpsig/testdata/keys/p256-pbkdf2-sha512-aes192.pem")
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, _ := os.ReadFile("../../internal/upstream/httpsig/testdata/keys/p256-pbkdf2-sha512-aes192.pub")
	tenantPub, err := httpsig.ParsePublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	keyFile, secretFile, passFile := filepath.Join(dir, "key.pem"), filepath.Join(dir, "secret"), filepath.Join(dir, "passphrase")
	for path, data := range map[string][]byte{keyFile: keyPEM, secretFile: []byte(testSecret + "\n"), passFile: []byte(keyPass + "\n")} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// Upvest knows the key but another secret: every token request is 401.
	clientID := uuid.NewString()
	sim, err := upvestsim.New(upvestsim.Config{ClientID: clientID, ClientSecret: "another-secret", TenantKeys: map[string]crypto.PublicKey{"tenant-key": tenantPub}})
	if err != nil {
		t.Fatal(err)
	}
	simSrv := httptest.NewServer(sim)
	t.Cleanup(func() { simSrv.Close(); sim.Close() })

	// Callers bring tokens signed by the bank's identity provider.
	idpKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: idpKey.Public(), KeyID: "idp-1", Algorithm: "ES256", Use: "sig"}}})
	jwksFile, policyFile := filepath.Join(dir, "jwks.json"), filepath.Join(dir, "policy.yaml")
	_ = os.WriteFile(jwksFile, jwks, 0o600)
	_ = os.WriteFile(policyFile, []byte("callers:\n  - identity: payout-worker\n    methods: [\"*\"]\n"), 0o600)
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: idpKey, KeyID: "idp-1"}}, nil)
	token := func(sub string, exp time.Time) string {
		payload, _ := json.Marshal(map[string]any{"sub": sub, "iss": "https://idp", "aud": "gateway", "exp": exp.Unix(), "note": marker + "-in-token"})
		jws, _ := signer.Sign(payload)
		s, _ := jws.CompactSerialize()
		return s
	}
	valid, expired, stranger := token("payout-worker", time.Now().Add(time.Hour)), token("payout-worker", time.Now().Add(-time.Hour)), token("someone-else", time.Now().Add(time.Hour))

	env := map[string]string{
		"UPVEST_BASE_URL": simSrv.URL, "UPVEST_CLIENT_ID": clientID, "UPVEST_CLIENT_SECRET_FILE": secretFile,
		"UPVEST_SIGNING_KEY_FILE": keyFile, "UPVEST_SIGNING_KEY_ID": "tenant-key", "UPVEST_SIGNING_KEY_PASSPHRASE_FILE": passFile,
		"GATEWAY_GRPC_ADDR": "127.0.0.1:0", "GATEWAY_HTTP_ADDR": "127.0.0.1:0", "GATEWAY_ADMIN_ADDR": "127.0.0.1:0", "GATEWAY_DATA_DIR": filepath.Join(dir, "data"),
		"GATEWAY_JWT_JWKS_FILE": jwksFile, "GATEWAY_JWT_ISSUER": "https://idp", "GATEWAY_JWT_AUDIENCE": "gateway", "GATEWAY_POLICY_FILE": policyFile,
		"GATEWAY_LOG_LEVEL": "debug",
	}
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(ctx, nil, env, &stdout, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	addrs := regexp.MustCompile(`listening grpc=(\S+) http=(\S+)`)
	var m []string
	for deadline := time.Now().Add(30 * time.Second); m == nil; {
		if m = addrs.FindStringSubmatch(stdout.String()); m == nil {
			if time.Now().After(deadline) {
				t.Fatalf("the gateway did not start:\n%s\n%s", stdout.String(), stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	conn, err := grpc.NewClient("passthrough:///"+m[1], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	var answers []string
	topups := gatewayv1.NewTopupServiceClient(conn)
	for _, tok := range []string{valid, expired, stranger, "not.a.jwt-" + marker} {
		cctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
		cctx, ccancel := context.WithTimeout(cctx, 10*time.Second)
		_, err := topups.CreateTopup(cctx, &gatewayv1.CreateTopupRequest{RequestId: uuid.NewString(), AccountGroupId: uuid.NewString(), CashAmount: "1.00", Currency: "EUR"})
		ccancel()
		if err == nil {
			t.Fatal("a call succeeded with credentials Upvest refuses")
		}
		answers = append(answers, err.Error())
	}
	for _, tok := range []string{valid, expired} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+m[2]+"/v1/payments/topups/"+uuid.NewString(), nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(res.Body)
		res.Body.Close()
		answers = append(answers, res.Header.Get("Www-Authenticate"), b.String())
	}
	// A wrong passphrase stops start-up with one line that names the file.
	badPass := filepath.Join(dir, "bad-passphrase")
	_ = os.WriteFile(badPass, []byte(marker+"-wrong-passphrase\n"), 0o600)
	_, out, errOut := runOnce(t, with(env, "UPVEST_SIGNING_KEY_PASSPHRASE_FILE", badPass, "GATEWAY_DATA_DIR", filepath.Join(dir, "data2")))
	answers = append(answers, out, errOut)

	cancel()
	<-done
	everything := stdout.String() + stderr.String() + strings.Join(answers, "\n")
	keyBody := strings.Join(strings.Split(string(keyPEM), "\n")[1:3], "")
	for name, secret := range map[string]string{
		"client secret": testSecret, "key passphrase": keyPass, "a bearer token": valid[strings.LastIndex(valid, ".")+1:],
		"an expired token's signature": expired[strings.LastIndex(expired, ".")+1:], "token claims": marker, "key file": keyBody,
		"key in base64": base64.StdEncoding.EncodeToString(keyPEM[40:80]),
	} {
		if strings.Contains(everything, secret) {
			t.Errorf("the %s leaked:\n%s", name, everything)
		}
	}
	if !strings.Contains(stderr.String(), "UNAUTHENTICATED") && !strings.Contains(stderr.String(), "Unauthenticated") {
		t.Errorf("no refused token in the log; the test provoked nothing:\n%s", stderr.String())
	}
}

// TestKeyFilePermissions: a signing key others may read, or a group other
// than the gateway's, stops start-up; one readable by the gateway's own
// group alone (a Kubernetes secret mounted with defaultMode 0400 for a pod
// whose fsGroup is the gateway's group) does not.
func TestKeyFilePermissions(t *testing.T) {
	otherGID := os.Getegid() + 1
	tests := []struct {
		name string
		mode os.FileMode
		gid  int
		ok   bool
	}{
		{"owner only", 0o400, os.Getegid(), true},
		{"owner read-write", 0o600, os.Getegid(), true},
		{"own group may read", 0o440, os.Getegid(), true},
		{"own group may write", 0o460, os.Getegid(), false},
		{"others may read", 0o404, os.Getegid(), false},
		{"another group may read", 0o440, otherGID, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeKey(t)
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			if tc.gid != os.Getegid() {
				if err := os.Chown(path, -1, tc.gid); err != nil {
					t.Skipf("cannot give the file another group: %v", err)
				}
			}
			err := checkKeyPermissions(Config{SigningKeyFile: path, SigningKeyInsecurePermissions: "false"})
			if (err == nil) != tc.ok {
				t.Fatalf("mode %04o gid %d: %v, want ok=%t", tc.mode, tc.gid, err, tc.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "UPVEST_SIGNING_KEY_FILE") {
				t.Errorf("error %q does not name the setting", err)
			}
			if err := checkKeyPermissions(Config{SigningKeyFile: path, SigningKeyInsecurePermissions: "true"}); err != nil {
				t.Errorf("with UPVEST_SIGNING_KEY_INSECURE_PERMISSIONS=true: %v", err)
			}
		})
	}
}
