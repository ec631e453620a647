// Package service implements the gateway's four gRPC services on top of the
// Upvest client in internal/upstream.
//
// Every handler does three things, in the manner of etcd's v3rpc layer:
// validate the request completely (an invalid request never costs a round
// trip to Upvest), call the client, and translate the answer or the error.
// Shared steps live in their own files: validate.go (field checks collected
// into one INVALID_ARGUMENT), idempotency.go (request_id and the
// Idempotency-Key header), paging.go (page tokens), call.go (the generic
// create/get/list/cancel helpers), errors.go (upstream errors as gRPC
// statuses) and mapping.go (upstream resources as protobuf messages).
//
// The Watch* streaming RPCs stream the webhook events of the event log
// (internal/events) given with WithEvents; each lives in its service's file,
// and watch.go holds their shared steps (filters, the subscription, error
// translation). Without WithEvents they answer UNIMPLEMENTED.
package service
