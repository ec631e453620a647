package broker

import (
	"fmt"
	"net/url"
)

// The durability of the gateway's streams on an external NATS. An
// acknowledged event must survive the loss of one server, which takes a
// stream with 3 replicas (JetStream acknowledges once a majority, 2 of 3,
// has it). With 1 replica an event lives on one server's disk: its loss, or
// a stretch of its downtime, loses or stalls the log.

// DefaultClusterReplicas is the replicas of a stream on a cluster of at
// least that many servers, when none are configured.
const DefaultClusterReplicas = 3

// MaxReplicas is JetStream's limit.
const MaxReplicas = 5

// Servers is how many NATS servers the connection knows in its cluster: the
// one it is connected to and those the servers announce (INFO connect_urls),
// as well as the configured ones. 1 for the embedded server and for a
// server that is not part of a cluster.
func (b *Broker) Servers() int {
	if b.srv != nil || b.nc.ConnectedClusterName() == "" {
		return 1
	}
	seen := map[string]bool{}
	for _, raw := range b.nc.Servers() {
		if u, err := url.Parse(raw); err == nil && u.Host != "" {
			seen[u.Host] = true
		}
	}
	return max(1, len(seen))
}

// Replicas settles the replicas of the gateway's streams: requested (1 to
// MaxReplicas), or with 0, DefaultClusterReplicas when the cluster has at
// least that many servers and 1 otherwise. It refuses more replicas than the
// cluster has servers, so that the gateway does not start on a durability
// it does not have. (Creating the stream checks again that JetStream can
// place every replica.)
func (b *Broker) Replicas(requested int) (int, error) {
	n := b.Servers()
	switch {
	case requested < 0 || requested > MaxReplicas:
		return 0, fmt.Errorf("broker: %d replicas: between 1 and %d", requested, MaxReplicas)
	case requested == 0 && n >= DefaultClusterReplicas:
		return DefaultClusterReplicas, nil
	case requested == 0:
		return 1, nil
	case requested > n:
		return 0, fmt.Errorf("broker: %d replicas configured, but the NATS cluster has %d server(s): an acknowledged event would not be on %d of them", requested, n, requested)
	}
	return requested, nil
}
