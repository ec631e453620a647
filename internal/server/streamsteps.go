package server

import (
	"log/slog"

	"google.golang.org/grpc"
)

// A streamStep is one step of the gateway's stream interceptor, run before
// the handler: it may refuse the stream, hand on another (with a context
// of its own, or a wrapper), and return done, which is called with the
// handler's error once the handler has returned and may replace it.
type streamStep func(ss grpc.ServerStream, info *grpc.StreamServerInfo) (next grpc.ServerStream, done func(error) error, err error)

// streamSteps is the gateway's stream interceptor: the steps run in order,
// all at one stack depth, and their done functions in reverse order.
// Nested interceptors would each put a frame, and gRPC's chaining closure,
// under the handler, where an idle stream's goroutine waits: with seven of
// them an event stream's stack outgrew 8 kB and doubled, 80 MB more at
// 10,000 streams. A panic in a step or in the handler is recovered here,
// logged, and ends the stream with INTERNAL, which the done functions
// (the request log among them) see.
func streamSteps(log *slog.Logger, steps ...streamStep) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		done := make([]func(error) error, 0, len(steps))
		defer func() {
			if p := recover(); p != nil {
				logPanic(ss.Context(), log, info.FullMethod, p)
				err = errPanic
			}
			for i := len(done) - 1; i >= 0; i-- {
				err = done[i](err)
			}
		}()
		for _, step := range steps {
			next, d, err := step(ss, info)
			if err != nil {
				return err
			}
			ss = next
			if d != nil {
				done = append(done, d)
			}
		}
		return handler(srv, ss)
	}
}
