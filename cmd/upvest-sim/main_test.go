package main

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upvest-gateway/gateway/internal/logtest"
	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
	"github.com/upvest-gateway/gateway/internal/upvestsim/simtest"
)

const (
	clientID = "ebabcf4d-61c3-4942-875c-e265a7c2d062"
	secret   = "cmd-test-secret"
	group    = "2596db3b-0d03-4651-9eda-970910479dfb"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// binary builds the command once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "upvest-sim-test"); buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "upvest-sim")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("build: %v", buildErr)
	}
	return binPath
}

func writePublicKey(t *testing.T, alg string) (string, *httpsig.Signer) {
	t.Helper()
	key := simtest.GenerateKey(t, alg)
	pemBytes, err := httpsig.MarshalPublicKeyPEM(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tenant.pub.pem")
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, simtest.NewSigner(t, key, "k1")
}

func TestServeSignedCalls(t *testing.T) {
	keyFile, signer := writePublicKey(t, simtest.P521)
	cmd := exec.Command(binary(t), "--addr", "127.0.0.1:0", "--client-id", clientID, "--client-secret", secret,
		"--tenant-public-key", keyFile, "--tenant-key-id", "k1", "--fault-seed", "3")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr logtest.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	lines := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		if s.Scan() {
			lines <- s.Text()
		}
	}()
	var baseURL string
	select {
	case line := <-lines:
		var ok bool
		if baseURL, ok = strings.CutPrefix(line, "upvest-sim listening on "); !ok {
			t.Fatalf("first line %q", line)
		}
	case err := <-exited:
		t.Fatalf("exited early: %v\n%s", err, stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("no listen address printed\n%s", stderr.String())
	}

	c := &simtest.Client{BaseURL: baseURL, ClientID: clientID, ClientSecret: secret, Signer: signer}
	tok := c.MustToken(t, "topups:admin", "positions:read")
	r := c.Do(t, http.MethodPost, "/payments/topups", []byte(`{"account_group_id":"`+group+`","cash_amount":"12.50","currency":"EUR"}`),
		simtest.Token(tok), simtest.IdempotencyKey("ccb07f42-4104-44ad-8e1f-c660bb7b269c"))
	if r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	r = c.Do(t, http.MethodGet, "/account_groups/"+group+"/payments/cash_balance", nil, simtest.Token(tok))
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"balance":"12.5"`) {
		t.Fatalf("balance: %d %s", r.Status, r.Body)
	}
	r = c.Do(t, http.MethodGet, "/account_groups/"+group+"/payments/cash_balance", nil, simtest.Unsigned(), simtest.Token(tok))
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("unsigned call answered %d", r.Status)
	}
	resp, err := http.Get(baseURL + "/_sim/effects?idempotency_key=ccb07f42-4104-44ad-8e1f-c660bb7b269c")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/_sim/effects: %d", resp.StatusCode)
	}

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGINT: %v\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no graceful exit after SIGINT")
	}
	logs := stderr.String()
	for _, want := range []string{"path=/payments/topups status=201 reason=ok", "status=401 reason=\"unauthorized: signature", "shutting down"} {
		if !strings.Contains(logs, want) {
			t.Fatalf("log lacks %q:\n%s", want, logs)
		}
	}
}

func TestBadFlags(t *testing.T) {
	keyFile, _ := writePublicKey(t, simtest.P256)
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"--client-id", clientID, "--client-secret", secret, "--tenant-public-key", keyFile, "--addr", "127.0.0.1:0"}
	without := func(flag string) []string {
		var out []string
		for i := 0; i < len(base); i += 2 {
			if base[i] != flag {
				out = append(out, base[i], base[i+1])
			}
		}
		return out
	}
	for _, tc := range []struct {
		name string
		args []string
		flag string
	}{
		{"no client id", without("--client-id"), "--client-id"},
		{"no secret", without("--client-secret"), "--client-secret"},
		{"no key", without("--tenant-public-key"), "--tenant-public-key"},
		{"missing key file", append(without("--tenant-public-key"), "--tenant-public-key", "/nonexistent.pem"), "--tenant-public-key"},
		{"not a key", append(without("--tenant-public-key"), "--tenant-public-key", notPEM), "--tenant-public-key"},
		{"fault rate", append(base, "--fault-rate", "1.5"), "--fault-rate"},
		{"latency", append(base, "--latency", "soon"), "latency"},
		{"webhook url", append(base, "--webhook-url", "not a url"), "--webhook-url"},
		{"unknown flag", append(base, "--colour", "blue"), "colour"},
		{"bad address", append(without("--addr"), "--addr", "256.0.0.1:x"), "--addr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(binary(t), tc.args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Fatalf("exit %v, want status 2; stderr %s", err, stderr.String())
			}
			msg := strings.TrimSuffix(stderr.String(), "\n")
			if strings.Contains(msg, "\n") || !strings.Contains(msg, tc.flag) || !strings.HasPrefix(msg, "upvest-sim: ") {
				t.Fatalf("stderr %q, want one line naming %s", stderr.String(), tc.flag)
			}
		})
	}
}
