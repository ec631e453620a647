package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// namedStream is a server stream that says which step handed it on.
type namedStream struct {
	grpc.ServerStream
	name string
}

func (s namedStream) Context() context.Context { return context.Background() }

func TestStreamSteps(t *testing.T) {
	t.Parallel()
	info := &grpc.StreamServerInfo{FullMethod: "/upvest.gateway.v1.TopupService/WatchTopupEvents", IsServerStream: true}
	refused := status.Error(codes.ResourceExhausted, "refused")
	handlerErr := errors.New("handler")

	type run struct {
		trail []string
		err   error
		log   string
	}
	do := func(refuseAt int, handler grpc.StreamHandler) run {
		var r run
		step := func(name string, at int) streamStep {
			return func(ss grpc.ServerStream, _ *grpc.StreamServerInfo) (grpc.ServerStream, func(error) error, error) {
				r.trail = append(r.trail, name+" got "+ss.(namedStream).name)
				if at == refuseAt {
					return nil, nil, refused
				}
				return namedStream{name: name}, func(err error) error {
					r.trail = append(r.trail, name+" done: "+status.Convert(err).Message())
					return err
				}, nil
			}
		}
		var logs bytes.Buffer
		intercept := streamSteps(slog.New(slog.NewTextHandler(&logs, nil)), step("a", 1), step("b", 2), step("c", 3))
		r.err = intercept(nil, namedStream{name: "grpc"}, info, func(_ any, ss grpc.ServerStream) error {
			r.trail = append(r.trail, "handler got "+ss.(namedStream).name)
			return handler(nil, ss)
		})
		r.log = logs.String()
		return r
	}

	t.Run("in order, done in reverse", func(t *testing.T) {
		t.Parallel()
		r := do(0, func(any, grpc.ServerStream) error { return handlerErr })
		want := []string{"a got grpc", "b got a", "c got b", "handler got c", "c done: handler", "b done: handler", "a done: handler"}
		if !slices.Equal(r.trail, want) || !errors.Is(r.err, handlerErr) {
			t.Errorf("trail %q, err %v; want %q, the handler's error", r.trail, r.err, want)
		}
	})
	t.Run("a step refuses", func(t *testing.T) {
		t.Parallel()
		r := do(2, func(any, grpc.ServerStream) error { t.Error("the handler ran"); return nil })
		want := []string{"a got grpc", "b got a", "a done: refused"}
		if !slices.Equal(r.trail, want) || r.err != refused {
			t.Errorf("trail %q, err %v; want %q, the refusal", r.trail, r.err, want)
		}
	})
	t.Run("the handler panics", func(t *testing.T) {
		t.Parallel()
		const secret = "panic-value-7f3a"
		r := do(0, func(any, grpc.ServerStream) error { panic(secret) })
		if status.Code(r.err) != codes.Internal || strings.Contains(r.err.Error(), secret) {
			t.Errorf("err %v, want INTERNAL without the panic's value", r.err)
		}
		if got := r.trail[len(r.trail)-1]; got != "a done: internal error" {
			t.Errorf("the outermost step saw %q, want the INTERNAL the panic became", got)
		}
		if !strings.Contains(r.log, "panic in handler") || strings.Contains(r.log, secret) {
			t.Errorf("log %q: want the panic recorded without its value", r.log)
		}
	})
}
