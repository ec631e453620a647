package events

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// A heartbeat may only advance to the stream's LastSeq when the consumer's
// state comes from the server that leads the stream: a lagging follower's
// "nothing pending" does not cover events only the leader has yet.
func TestHeartbeatAdvanceNeedsConsumerOnStreamLeader(t *testing.T) {
	stream := func(leader string) *jetstream.StreamInfo {
		si := &jetstream.StreamInfo{}
		if leader != "" {
			si.Cluster = &jetstream.ClusterInfo{Name: "c", Leader: leader}
		}
		return si
	}
	consumer := func(leader string) *jetstream.ConsumerInfo {
		ci := &jetstream.ConsumerInfo{}
		if leader != "" {
			ci.Cluster = &jetstream.ClusterInfo{Name: "c", Leader: leader}
		}
		return ci
	}
	tests := []struct {
		name           string
		si             *jetstream.StreamInfo
		ci             *jetstream.ConsumerInfo
		advanceAllowed bool
	}{
		{"no cluster info", stream(""), consumer(""), true},
		{"consumer without cluster info", stream("n1"), consumer(""), true},
		{"consumer on the stream leader", stream("n1"), consumer("n1"), true},
		{"consumer on a follower", stream("n1"), consumer("n2"), false},
		{"stream without cluster info", stream(""), consumer("n2"), false},
	}
	for _, tt := range tests {
		if got := sameServerView(tt.si, tt.ci); got != tt.advanceAllowed {
			t.Errorf("%s: sameServerView = %v, want %v", tt.name, got, tt.advanceAllowed)
		}
	}
}
