package service

import (
	"context"
	"regexp"
	"strings"

	"github.com/google/uuid"
	"google.golang.org/grpc/metadata"
)

// IdempotencyKeyMetadata is the metadata key carrying the idempotency key:
// read from incoming metadata when request_id is empty (the REST face maps
// the Idempotency-Key header onto it) and always set in the response header
// metadata of a creating call, with the key actually used.
const IdempotencyKeyMetadata = "idempotency-key"

// UpvestRequestIDMetadata is the response header metadata key carrying the
// upvest-request-id of Upvest's last answer, whenever there was one.
const UpvestRequestIDMetadata = "upvest-request-id"

// idempotencyKeyPattern is the upstream's pattern for idempotency keys.
var idempotencyKeyPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-5][0-9a-fA-F]{3}-?[089abAB][0-9a-fA-F]{3}-?[0-9a-fA-F]{12}$`)

// idempotencyKey settles the key of a creating call: request_id, else the
// idempotency-key metadata, else a fresh UUIDv4. A key that is malformed, or
// that the two sources disagree on, is a violation of request_id and yields "".
func (v *validator) idempotencyKey(ctx context.Context, requestID string) string {
	var header []string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		header = uniq(md.Get(IdempotencyKeyMetadata))
	}
	if len(header) > 1 {
		v.add("request_id", "the Idempotency-Key header is sent more than once with different values")
		return ""
	}
	switch {
	case requestID != "" && len(header) == 1:
		k, ok := canonicalKey(requestID)
		if !ok {
			v.add("request_id", "must be a UUID of version 1 to 5, e.g. a random UUIDv4")
			return ""
		}
		if h, _ := canonicalKey(header[0]); !strings.EqualFold(h, k) {
			v.add("request_id", "differs from the Idempotency-Key header: send one of them, or the same key in both")
			return ""
		}
		return k
	case requestID != "":
		k, ok := canonicalKey(requestID)
		if !ok {
			v.add("request_id", "must be a UUID of version 1 to 5, e.g. a random UUIDv4")
		}
		return k
	case len(header) == 1:
		k, ok := canonicalKey(header[0])
		if !ok {
			v.add("request_id", "the Idempotency-Key header must be a UUID of version 1 to 5, e.g. a random UUIDv4")
		}
		return k
	}
	if !v.opts.generateRequestIDs {
		v.add("request_id", "is required: a UUID of version 1 to 5 that you keep and send again on every retry of this operation "+
			"(or the Idempotency-Key header); without one no retry is safe, as a retry would act again")
		return ""
	}
	// The operator allows callers without a key: one per call, so at least
	// the gateway's own retries of this call cannot act twice.
	return uuid.NewString()
}

// canonicalKey accepts what the upstream's pattern accepts, if it is a UUID
// of version 1 to 5, and returns it in the hyphenated 8-4-4-4-12 form in
// lower case: UUIDs are case-insensitive, so the same request_id always
// yields the same key, whatever its case.
func canonicalKey(s string) (string, bool) {
	if !idempotencyKeyPattern.MatchString(s) {
		return "", false
	}
	h := strings.ToLower(strings.ReplaceAll(s, "-", ""))
	if v := h[12]; v < '1' || v > '5' {
		return "", false
	}
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32], true
}
