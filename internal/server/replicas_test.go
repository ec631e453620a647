package server_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/logtest"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
	"github.com/upvest-gateway/gateway/internal/upvestsim/simtest"
)

// TestReplicasShareTheLog runs two gateway processes on the external NATS
// of GATEWAY_NATS_URL, with a standalone simulator delivering its webhooks
// to the first: a subscriber of the second sees the events of a top-up
// created through the first.
func TestReplicasShareTheLog(t *testing.T) {
	natsURL := os.Getenv("GATEWAY_NATS_URL")
	switch {
	case natsURL == "":
		t.Skip("GATEWAY_NATS_URL not set")
	case testing.Short():
		t.Skip("builds and starts processes")
	}
	dir := t.TempDir()
	gatewayBin, simBin := filepath.Join(dir, "gateway"), filepath.Join(dir, "upvest-sim")
	for bin, pkg := range map[string]string{gatewayBin: "../../cmd/gateway", simBin: "../../cmd/upvest-sim"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}

	// The tenant's key: the private half for the gateways, the public half
	// for the simulator.
	_, keyFile, pubFile := simtest.WriteKey(t, dir)

	clientID, secret := uuid.NewString(), uuid.NewString()
	gw1HTTP := freeAddr(t)
	sim := startProcess(t, "upvest-sim", regexp.MustCompile(`listening on (http://\S+)`), simBin,
		[]string{"--addr", "127.0.0.1:0", "--client-id", clientID, "--client-secret", secret, "--tenant-public-key", pubFile,
			"--webhook-url", "http://" + gw1HTTP + "/webhooks/upvest"}, nil)

	sfx := uuid.NewString()[:8]
	stream := "GATEWAY_REPLICAS_" + sfx
	idem, statuses := "REPLICAS_IDEM_"+sfx, "REPLICAS_STATUS_"+sfx
	t.Cleanup(func() {
		for _, s := range []string{stream, stream + "_QUARANTINE", "KV_" + idem, "KV_" + statuses} {
			servertest.DeleteStream(t, natsURL, s)
		}
	})
	env := []string{
		"UPVEST_BASE_URL=" + sim[1], "UPVEST_CLIENT_ID=" + clientID, "UPVEST_CLIENT_SECRET=" + secret,
		"UPVEST_SIGNING_KEY_FILE=" + keyFile, "UPVEST_SIGNING_KEY_ID=tenant-key",
		"GATEWAY_ADMIN_ADDR=127.0.0.1:0", "GATEWAY_SHUTDOWN_DELAY=1s",
		"GATEWAY_NATS_URL=" + natsURL, "GATEWAY_EVENTS_STREAM=" + stream, "GATEWAY_IDEMPOTENCY_BUCKET=" + idem, "GATEWAY_STATUS_BUCKET=" + statuses, "GATEWAY_EVENTS_SUBJECT=replicas" + sfx + ".events",
	}
	listening := regexp.MustCompile(`^gateway: listening grpc=(\S+) http=(\S+)$`)
	gw1 := startProcess(t, "gateway 1", listening, gatewayBin, nil,
		append(env, "GATEWAY_GRPC_ADDR=127.0.0.1:0", "GATEWAY_HTTP_ADDR="+gw1HTTP, "GATEWAY_DATA_DIR="+filepath.Join(dir, "gw1")))
	gw2 := startProcess(t, "gateway 2", listening, gatewayBin, nil,
		append(env, "GATEWAY_GRPC_ADDR=127.0.0.1:0", "GATEWAY_HTTP_ADDR=127.0.0.1:0", "GATEWAY_DATA_DIR="+filepath.Join(dir, "gw2")))

	dial := func(addr string) *grpc.ClientConn {
		conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	conn1, conn2 := dial(gw1[1]), dial(gw2[1])

	ag := uuid.NewString()
	w := startWatch(t, func(ctx context.Context) (grpc.ServerStreamingClient[gatewayv1.WatchTopupEventsResponse], error) {
		return gatewayv1.NewTopupServiceClient(conn2).WatchTopupEvents(ctx, &gatewayv1.WatchTopupEventsRequest{AccountGroupId: ag})
	})
	created, err := gatewayv1.NewTopupServiceClient(conn1).CreateTopup(ctxT(t), topupRequest(ag))
	if err != nil {
		t.Fatal(err)
	}
	id := created.GetTopup().GetId()
	checkTopupEvent(t, w.events(t, 1)[0], id, "TOPUP_EVENT_TYPE_CONFIRMED")

	res, err := http.Post(sim[1]+"/_sim/advance", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	checkTopupEvent(t, w.events(t, 1)[0], id, "TOPUP_EVENT_TYPE_SETTLED")
	w.quiet(t, 300*time.Millisecond)
}

func checkTopupEvent(t *testing.T, m msg, topupID, typ string) {
	t.Helper()
	tp, ok := m.Object.(*gatewayv1.Topup)
	if m.Type != typ || !ok || tp.GetId() != topupID {
		t.Fatalf("event %s %s %v, want %s of top-up %s", m.ID, m.Type, m.Object, typ, topupID)
	}
}

// freeAddr is a loopback address nothing listens on, for a process that
// must be told its address before it starts.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startProcess starts bin and waits for a line of its stdout that matches
// ready, returning the submatches. The process gets SIGTERM when the test
// ends; its stderr is shown if the test failed.
func startProcess(t *testing.T, name string, ready *regexp.Regexp, bin string, args, env []string) []string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var stderr logtest.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(25 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("%s did not exit after SIGTERM", name)
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", name, stderr.String())
		}
	})
	found := make(chan []string, 1)
	go func() {
		defer close(done)
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			if m := ready.FindStringSubmatch(lines.Text()); m != nil {
				select {
				case found <- m:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
	}()
	select {
	case m := <-found:
		return m
	case <-done:
		t.Fatalf("%s exited before it was ready:\n%s", name, stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not get ready:\n%s", name, stderr.String())
	}
	return nil
}
