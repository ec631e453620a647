package statusindex_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/upvest-gateway/gateway/internal/broker"
	"github.com/upvest-gateway/gateway/internal/events"
	"github.com/upvest-gateway/gateway/internal/events/eventstest"
	"github.com/upvest-gateway/gateway/internal/statusindex"
)

func open(t *testing.T) (*broker.Broker, *statusindex.Index) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := broker.Open(ctx, broker.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ix, err := statusindex.Open(ctx, b, statusindex.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return b, ix
}

// TestRecord: the account group is kept once known; a status replaces one
// only if it is not older, so events out of order never go back in time.
func TestRecord(t *testing.T) {
	t.Parallel()
	_, ix := open(t)
	ctx := context.Background()
	id, ag := uuid.NewString(), uuid.NewString()
	t0 := time.Now()
	if _, ok, err := ix.Get(ctx, statusindex.KindVirtualCashDecrease, id); ok || err != nil {
		t.Fatalf("unknown decrease: %v %v", ok, err)
	}
	steps := []struct {
		learnt statusindex.Entry
		want   statusindex.Entry
	}{
		{statusindex.Entry{AccountGroupID: ag, Status: "ISSUED", At: t0}, statusindex.Entry{AccountGroupID: ag, Status: "ISSUED", At: t0}},
		{statusindex.Entry{Status: "CANCELLED", At: t0.Add(time.Second)}, statusindex.Entry{AccountGroupID: ag, Status: "CANCELLED", At: t0.Add(time.Second)}},
		// An older event arriving late changes nothing.
		{statusindex.Entry{AccountGroupID: uuid.NewString(), Status: "QUEUED", At: t0.Add(time.Millisecond)}, statusindex.Entry{AccountGroupID: ag, Status: "CANCELLED", At: t0.Add(time.Second)}},
	}
	for i, st := range steps {
		if err := ix.Record(ctx, statusindex.KindVirtualCashDecrease, id, st.learnt); err != nil {
			t.Fatal(err)
		}
		got, ok, err := ix.Get(ctx, statusindex.KindVirtualCashDecrease, id)
		if err != nil || !ok || got.AccountGroupID != st.want.AccountGroupID || got.Status != st.want.Status || !got.At.Equal(st.want.At) {
			t.Fatalf("step %d: %+v %v %v, want %+v", i, got, ok, err, st.want)
		}
	}
}

// TestWait returns once the entry is what the caller waits for, and the
// caller's deadline bounds it.
func TestWait(t *testing.T) {
	t.Parallel()
	_, ix := open(t)
	id := uuid.NewString()
	cancelled := func(e statusindex.Entry) bool { return e.Status == "CANCELLED" }
	go func() {
		time.Sleep(50 * time.Millisecond)
		_ = ix.Record(context.Background(), statusindex.KindVirtualCashDecrease, id, statusindex.Entry{Status: "ISSUED", At: time.Now()})
		_ = ix.Record(context.Background(), statusindex.KindVirtualCashDecrease, id, statusindex.Entry{Status: "CANCELLED", At: time.Now()})
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if e, err := ix.Wait(ctx, statusindex.KindVirtualCashDecrease, id, cancelled); err != nil || e.Status != "CANCELLED" {
		t.Fatalf("Wait = %+v, %v", e, err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if _, err := ix.Wait(short, statusindex.KindVirtualCashDecrease, uuid.NewString(), cancelled); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on a decrease nobody records: %v", err)
	}
}

// TestTail: the index learns decreases' statuses from the event log.
func TestTail(t *testing.T) {
	t.Parallel()
	b, ix := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := events.Open(ctx, b, events.LogConfig{})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = ix.Tail(ctx, b.JetStream(), l.Config().Stream, l.Config().Subject) }()
	id, ag := uuid.NewString(), uuid.NewString()
	obj := func(status string) map[string]any {
		return map[string]any{"id": id, "account_group_id": ag, "status": status, "amount": "1.00", "currency": "EUR"}
	}
	var evs []events.Event
	for _, raw := range []map[string]any{
		eventstest.RawEvent("VIRTUAL_CASH_DECREASE.ISSUED", time.Now(), obj("ISSUED")),
		eventstest.RawEvent("TOPUP.SETTLED", time.Now(), map[string]any{"id": uuid.NewString(), "account_group_id": ag}),
		eventstest.RawEvent("VIRTUAL_CASH_DECREASE.CANCELLED", time.Now().Add(time.Second), obj("CANCELLED")),
	} {
		data, _ := json.Marshal(raw)
		e, err := events.ParseEvent(data)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	if err := l.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	e, err := ix.Wait(wctx, statusindex.KindVirtualCashDecrease, id, func(e statusindex.Entry) bool { return e.Status == "CANCELLED" })
	if err != nil || e.AccountGroupID != ag {
		t.Fatalf("after the events: %+v, %v", e, err)
	}
}
