package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/upvest-gateway/gateway/internal/problem"
)

// problemErrorHandler is the REST face's runtime.ErrorHandlerFunc: the gRPC
// status as problem+json, with the HTTP status grpc-gateway would use.
func problemErrorHandler(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	httpStatus := 0
	var hse *runtime.HTTPStatusError
	if errors.As(err, &hse) {
		httpStatus, err = hse.HTTPStatus, hse.Err
	}
	st := status.Convert(err)
	switch decoded := decodeError(ctx); {
	case bodyTooLarge(ctx):
		// The decoder reports an oversized body as a plain InvalidArgument.
		httpStatus = http.StatusRequestEntityTooLarge
		st = gatewayStatus(codes.InvalidArgument, ReasonBodyTooLarge, "the request body is too large")
	case decoded != nil && st.Code() == codes.InvalidArgument:
		st = decoded // with the field violation the generated handler dropped
	}
	if httpStatus == 0 {
		httpStatus = runtime.HTTPStatusFromCode(st.Code())
	}
	if md, ok := runtime.ServerMetadataFromContext(ctx); ok {
		for k, vs := range md.HeaderMD {
			if name, ok := outgoingHeader(k); ok && len(vs) > 0 {
				w.Header().Set(name, vs[0])
			}
		}
	}
	writeProblem(w, httpStatus, st)
}

// problemRoutingErrorHandler answers requests no REST route matches.
func problemRoutingErrorHandler(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	var st *status.Status
	switch httpStatus {
	case http.StatusNotFound:
		st = gatewayStatus(codes.NotFound, ReasonNoRoute, "no REST route matches this path")
	case http.StatusMethodNotAllowed:
		st = gatewayStatus(codes.Unimplemented, ReasonHTTPMethodNotAllowed, "this path does not accept method "+r.Method)
	case http.StatusBadRequest:
		st = gatewayStatus(codes.InvalidArgument, ReasonNoRoute, "malformed request path")
	default:
		st = status.New(codes.Internal, "routing error")
	}
	writeProblem(w, httpStatus, st)
}

// writeProblem writes st as a problem+json answer with httpStatus.
func writeProblem(w http.ResponseWriter, httpStatus int, st *status.Status) {
	problem.Write(w, problem.FromStatus(httpStatus, st))
}
