package events

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/upvest-gateway/gateway/internal/broker"
	"github.com/upvest-gateway/gateway/internal/events/eventstest"
	"github.com/upvest-gateway/gateway/internal/logtest"
)

// On a cluster of three the log (and its quarantine) get three replicas by
// default, and an acknowledged event survives the loss of the server that
// leads the stream: the log goes on with the same events, and takes more.
func TestAcknowledgedEventSurvivesLossOfOneServer(t *testing.T) {
	t.Parallel()
	cluster := eventstest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := broker.Open(ctx, broker.Config{URL: cluster.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	replicas, err := b.Replicas(0)
	if err != nil || replicas != 3 {
		t.Fatalf("Replicas(0) = %d, %v; want 3", replicas, err)
	}
	cfg := LogConfig{Stream: "REPLICATED", Subject: "replicated.events", Replicas: replicas}
	l, err := Open(ctx, b, cfg, WithLogger(logtest.Logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	q, err := OpenQuarantine(ctx, b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{cfg.Stream, q.Stream()} {
		s, err := b.JetStream().Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if info := s.CachedInfo(); info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Fatalf("stream %s: %d replicas, cluster %+v; want a leader and 2 replicas", name, info.Config.Replicas, info.Cluster)
		}
	}

	ag := uuid.NewString()
	before := makeEvents(t, 5, "TOPUP.SETTLED", ag)
	mustAppend(t, l, before)

	info, err := l.streamInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leader := info.Cluster.Leader
	cluster.Server(leader).Shutdown()

	// A new leader takes over with every acknowledged event.
	deadline := time.Now().Add(20 * time.Second)
	for {
		// Short requests: while the cluster elects leaders, JetStream
		// requests go unanswered.
		try, cancel := context.WithTimeout(context.Background(), time.Second)
		info, err = l.streamInfo(try)
		cancel()
		if err == nil && info.Cluster != nil && info.Cluster.Leader != "" && info.Cluster.Leader != leader {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new stream leader after %s went away: %v", leader, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if info.State.Msgs != uint64(len(before)) {
		t.Fatalf("%d events after losing %s, want %d", info.State.Msgs, leader, len(before))
	}
	after := makeEvents(t, 2, "TOPUP.SETTLED", ag)
	mustAppend(t, l, append(before, after...)) // the retried ones are duplicates
	if info, err = l.streamInfo(ctx); err != nil || info.State.Msgs != uint64(len(before)+len(after)) {
		t.Fatalf("after appending on two servers: %+v, %v", info.State, err)
	}
}
