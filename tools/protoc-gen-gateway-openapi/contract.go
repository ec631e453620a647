package main

// What the REST face promises beyond the protos: the problem+json shape
// internal/problem writes, the headers internal/server reads and sets, the
// stream framing of internal/server/stream.go, and the callers' security
// of internal/auth. Tests of those packages check the description against
// what they do.

const apiDescription = `REST/JSON face of the Upvest gRPC gateway: the same four services as its gRPC face, on Upvest's own paths under /v1, with Upvest's snake_case field names.

**Creating calls** (POST) require an idempotency key: the body's ` + "`request_id`" + ` or the ` + "`Idempotency-Key`" + ` header, a UUID chosen once per operation and sent again on every retry of it. The operation happens once, and every call with the key gets the same answer. The key used comes back in the ` + "`Idempotency-Key`" + ` response header, also when the call fails; Upvest's request id in ` + "`Upvest-Request-Id`" + `.

**Input is strict**: unknown body fields, unknown query parameters and anything after the JSON body are refused with 400, naming what was wrong.

**Errors** are ` + "`application/problem+json`" + ` (RFC 9457) on every error status: ` + "`type`" + ` (Upvest's problem type URL when Upvest refused the call, else ` + "`urn:upvest-gateway:problem:<reason>`" + `), ` + "`title`" + `, ` + "`status`" + `, ` + "`detail`" + `, the gRPC ` + "`code`" + `, Upvest's ` + "`request_id`" + ` where it answered, ` + "`field_violations`" + ` for invalid input (field names as sent, snake_case), and ` + "`details`" + `: the gRPC status details in protobuf JSON (google.rpc.ErrorInfo with reason and domain, ` + "`upvest.co`" + ` for Upvest's reasons and ` + "`upvest-gateway`" + ` for the gateway's; RequestInfo; RetryInfo; BadRequest; PreconditionFailure).

**Streams** (` + "`:watch`" + `) answer newline-delimited JSON, or Server-Sent Events when ` + "`Accept`" + ` lists ` + "`text/event-stream`" + `; see each stream operation.

**Callers** prove who they are with a client certificate (mutual TLS) or a bearer token (JWT), as the gateway is configured; a gateway configured with neither listens on loopback only and asks for nothing. Browsers on the origins of ` + "`GATEWAY_CORS_ALLOWED_ORIGINS`" + ` may call every operation and read the streams (CORS).`

const streamDescription = `**Stream.** One message per line as application/x-ndjson (` + "`{\"result\": <message>}`" + `), or, when the request's Accept lists text/event-stream, one Server-Sent Event per message. Every message carries a ` + "`resume_token`" + `: store the last one processed and pass it as ` + "`resume_token`" + ` (or, for Server-Sent Events, as ` + "`Last-Event-ID`" + `, which an EventSource sends by itself when it reconnects) to continue exactly after it, with no message lost or repeated. A heartbeat comes every 15 s on a quiet stream and carries the newest token. An error before the first message is an ordinary problem+json answer with its status; an error after it ends the stream with a last record holding the problem (` + "`{\"error\": <problem>}`" + ` in NDJSON, the event ` + "`end`" + ` in Server-Sent Events). Streams also end when the gateway shuts down (problem code UNAVAILABLE): reconnect and resume.`

const sseDescription = `Server-Sent Events. Each message is one event:

    id: <resume_token>
    event: <the message's kind: event, heartbeat, snapshot or update>
    data: <the message as JSON, as in application/x-ndjson's result>

A stream that fails after it started ends with

    event: end
    data: <the problem as JSON>

The event is named end, not error, so that a browser's EventSource does not hand it to onerror; the connection then closes, and the EventSource reconnects with Last-Event-ID and continues after the last event it got. A reconnect that cannot succeed (a resume token past the log's retention) is answered with a non-200 problem, which makes the EventSource stop.`

// ndjsonExample is one line of any stream: the heartbeat every stream has.
var ndjsonExample = obj{"result": obj{"resume_token": "AiSe8vGkE3bFvX0Ubuq5Q2gAAAAAAAAAAg", "heartbeat": obj{"time": "2026-01-07T10:00:15Z"}}}

const sseExample = `id: AiSe8vGkE3bFvX0Ubuq5Q2gAAAAAAAAAAQ
event: event
data: {"resume_token":"AiSe8vGkE3bFvX0Ubuq5Q2gAAAAAAAAAAQ","event":{"id":"8c4a0f2e-3f41-4f5b-9d6e-1b2a3c4d5e6f","created_at":"2026-01-07T10:00:00Z","type":"TOPUP_EVENT_TYPE_CONFIRMED","webhook_id":"4a3c2b1d-0e9f-4a8b-8c7d-6e5f4a3b2c1d","topup":{"id":"aac4d47a-d566-40c2-bfef-9b4dd4cd932a","created_at":"2026-01-07T10:00:00Z","account_group_id":"2596db3b-0d03-4651-9eda-970910479dfb","cash_amount":"100.00","currency":"EUR","status":"TOPUP_STATUS_CONFIRMED","settlement_reference":"aac4d47a-d566-40c2-bfef-9b4dd4cd932a"}}}

id: AiSe8vGkE3bFvX0Ubuq5Q2gAAAAAAAAAAg
event: heartbeat
data: {"resume_token":"AiSe8vGkE3bFvX0Ubuq5Q2gAAAAAAAAAAg","heartbeat":{"time":"2026-01-07T10:00:15Z"}}

event: end
data: {"type":"urn:upvest-gateway:problem:shutting_down","title":"Service Unavailable","status":503,"detail":"the gateway is shutting down: resume on another replica","code":"UNAVAILABLE","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"SHUTTING_DOWN","domain":"upvest-gateway"}]}

`

// grpcCodes are the gRPC status code names a problem's code takes.
var grpcCodes = []any{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
	"OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}

// contractSchemas are the schemas of internal/problem's answers.
func contractSchemas() obj {
	str := func(desc string) obj { return obj{"type": "string", "description": desc} }
	return obj{
		"Problem": obj{
			"type": "object",
			"description": "An error answer (RFC 9457 application/problem+json), with the gRPC status the same failure has " +
				"on the gateway's gRPC face, so that a REST caller learns everything a gRPC caller does.",
			"required": []any{"type", "title", "status", "code"},
			"properties": obj{
				"type": obj{"type": "string", "format": "uri-reference",
					"description": "Upvest's problem type URL when Upvest refused the call; urn:upvest-gateway:problem:<reason> for the gateway's own reasons (the ErrorInfo reason, lower case); about:blank when there is no reason.",
					"examples":    []any{"urn:upvest-gateway:problem:invalid_argument", "https://docs.upvest.co/errors/not_found"}},
				"title":  str("The HTTP status text."),
				"status": obj{"type": "integer", "format": "int32", "minimum": 400, "maximum": 599, "description": "The HTTP status."},
				"detail": str("What went wrong, for a person."),
				"instance": obj{"type": "string", "format": "uri-reference",
					"description": "Reserved by RFC 9457; the gateway sets none."},
				"code": obj{"type": "string", "enum": grpcCodes,
					"description": "The gRPC status code name."},
				"request_id": str("Upvest's request id (upvest-request-id) of the answer behind this problem, where Upvest answered."),
				"field_violations": obj{"type": "array", "items": ref("schemas", "FieldViolation"),
					"description": "The invalid request fields (google.rpc.BadRequest), by the names the request used: snake_case body fields, query parameters and path parameters."},
				"details": obj{"type": "array", "items": ref("schemas", "StatusDetail"),
					"description": "The gRPC status details in protobuf JSON."},
			},
		},
		"FieldViolation": obj{
			"type":     "object",
			"required": []any{"field", "description"},
			"properties": obj{
				"field":       str("The field, as the request named it (snake_case)."),
				"description": str("What is wrong with it."),
			},
		},
		"StatusDetail": obj{
			"type": "object",
			"description": "A gRPC status detail (google.protobuf.Any in protobuf JSON): google.rpc.ErrorInfo (reason, domain " +
				"upvest.co or upvest-gateway, metadata), google.rpc.RequestInfo (request_id: Upvest's upvest-request-id), " +
				"google.rpc.BadRequest, google.rpc.RetryInfo, google.rpc.PreconditionFailure.",
			"required":             []any{"@type"},
			"properties":           obj{"@type": obj{"type": "string", "examples": []any{"type.googleapis.com/google.rpc.ErrorInfo"}}},
			"additionalProperties": true,
		},
	}
}

func contractParameters() obj {
	return obj{
		"IdempotencyKey": obj{
			"name": "Idempotency-Key",
			"in":   "header",
			"description": "The idempotency key (a UUID of version 1 to 5), instead of the body's request_id: chosen once per " +
				"operation and sent again on every retry of it. One of the two is required.",
			"schema":  obj{"type": "string", "format": "uuid"},
			"example": "5b0a6c1e-8f3d-4c2a-9e7b-1d2f3a4b5c6d",
		},
		"LastEventID": obj{
			"name": "Last-Event-ID",
			"in":   "header",
			"description": "Server-Sent Events only: the id of the last event received, which is its resume token; " +
				"it wins over resume_token. An EventSource sends it by itself when it reconnects.",
			"schema": obj{"type": "string"},
		},
	}
}

func contractHeaders() obj {
	return obj{
		"IdempotencyKey": obj{
			"description": "The idempotency key the call used (creating calls), also on errors: retry with it.",
			"schema":      obj{"type": "string", "format": "uuid"},
		},
		"UpvestRequestId": obj{
			"description": "Upvest's request id of its answer, where the call reached Upvest: quote it to Upvest's support.",
			"schema":      obj{"type": "string"},
		},
		"RetryAfter": obj{
			"description": "Seconds to wait before retrying.",
			"schema":      obj{"type": "integer", "minimum": 1},
		},
	}
}

func securitySchemes() obj {
	return obj{
		"mutualTLS": obj{
			"type": "mutualTLS",
			"description": "A client certificate issued by a CA of GATEWAY_TLS_CLIENT_CA_FILE. The caller is its first URI SAN " +
				"(e.g. a SPIFFE id), else its subject CN; GATEWAY_POLICY_FILE says what it may do.",
		},
		"bearerAuth": obj{
			"type":         "http",
			"scheme":       "bearer",
			"bearerFormat": "JWT",
			"description": "A JWT signed by a key of GATEWAY_JWT_JWKS_FILE or GATEWAY_JWT_JWKS_URL, with the configured " +
				"issuer and audience. The caller is its GATEWAY_JWT_IDENTITY_CLAIM (default sub).",
		},
	}
}

type problemExample struct {
	when string
	body obj
}

func exampleProblem(status int, title, typ, code, detail string, details ...any) obj {
	p := obj{"type": typ, "title": title, "status": status, "code": code, "detail": detail}
	if len(details) > 0 {
		p["details"] = details
	}
	return p
}

func errorInfo(reason, domain string) obj {
	return obj{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": domain}
}

var problemExamples = map[int]problemExample{
	400: {"invalid input (checked before any call to Upvest): a field, an unknown query parameter, data after the JSON body; or Upvest's 400.", func() obj {
		p := exampleProblem(400, "Bad Request", "urn:upvest-gateway:problem:invalid_argument", "INVALID_ARGUMENT",
			"invalid request: check cash_amount",
			obj{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": []any{obj{"field": "cash_amount", "description": `must be a decimal string of 1 to 9 digits, optionally followed by "." and exactly 2 digits, e.g. "200.00"`}}},
			errorInfo("INVALID_ARGUMENT", "upvest-gateway"))
		p["field_violations"] = []any{obj{"field": "cash_amount", "description": `must be a decimal string of 1 to 9 digits, optionally followed by "." and exactly 2 digits, e.g. "200.00"`}}
		return p
	}()},
	401: {"no usable caller credentials.", exampleProblem(401, "Unauthorized", "urn:upvest-gateway:problem:unauthenticated", "UNAUTHENTICATED",
		"no client certificate and no bearer token", errorInfo("UNAUTHENTICATED", "upvest-gateway"))},
	403: {"the caller's policy does not grant this call (or Upvest refused the gateway's scope).", exampleProblem(403, "Forbidden", "urn:upvest-gateway:problem:method_not_allowed", "PERMISSION_DENIED",
		"the caller may not call upvest.gateway.v1.TopupService/CreateTopup", errorInfo("METHOD_NOT_ALLOWED", "upvest-gateway"))},
	404: {"no such resource at Upvest, or no such route.", func() obj {
		p := exampleProblem(404, "Not Found", "https://docs.upvest.co/errors/not_found", "NOT_FOUND",
			"Upvest answered 404 Not Found (upvest-request-id 6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d)",
			obj{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "NOT_FOUND", "domain": "upvest.co",
				"metadata": obj{"http_status": "404", "problem_type": "https://docs.upvest.co/errors/not_found", "upvest_request_id": "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"}},
			obj{"@type": "type.googleapis.com/google.rpc.RequestInfo", "requestId": "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"})
		return p
	}()},
	409: {"the idempotency key was used for a different request, or its first call is still running.", exampleProblem(409, "Conflict", "urn:upvest-gateway:problem:request_id_reused", "ALREADY_EXISTS",
		"request_id 5b0a6c1e-8f3d-4c2a-9e7b-1d2f3a4b5c6d was used for a different request",
		obj{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "REQUEST_ID_REUSED", "domain": "upvest-gateway", "metadata": obj{"request_id": "5b0a6c1e-8f3d-4c2a-9e7b-1d2f3a4b5c6d"}})},
	413: {"the request body is larger than the gateway accepts.", exampleProblem(413, "Request Entity Too Large", "urn:upvest-gateway:problem:body_too_large", "INVALID_ARGUMENT",
		"the request body is larger than 1048576 bytes", errorInfo("BODY_TOO_LARGE", "upvest-gateway"))},
	429: {"over the caller's limits, or Upvest throttled the gateway: wait Retry-After.", exampleProblem(429, "Too Many Requests", "urn:upvest-gateway:problem:caller_rate_limited", "RESOURCE_EXHAUSTED",
		"more than 50 calls per second", errorInfo("CALLER_RATE_LIMITED", "upvest-gateway"),
		obj{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"})},
	500: {"the gateway failed, or its Upvest credentials were refused.", exampleProblem(500, "Internal Server Error", "urn:upvest-gateway:problem:internal", "INTERNAL",
		"the gateway failed to process Upvest's answer", errorInfo("INTERNAL", "upvest-gateway"))},
	501: {"the gateway runs without an event log, so it has no streams.", exampleProblem(501, "Not Implemented", "about:blank", "UNIMPLEMENTED",
		"the event log is not configured")},
	503: {"Upvest, the event log or the idempotency store cannot be reached, or the gateway is shutting down. OUTCOME_UNKNOWN: retry with the same idempotency key.", exampleProblem(503, "Service Unavailable", "urn:upvest-gateway:problem:outcome_unknown", "UNAVAILABLE",
		"Upvest may or may not have acted on this request: retry it with the same request_id (idempotency-key 5b0a6c1e-8f3d-4c2a-9e7b-1d2f3a4b5c6d); the retry settles it without acting twice",
		obj{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"},
		obj{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "OUTCOME_UNKNOWN", "domain": "upvest-gateway", "metadata": obj{"idempotency_key": "5b0a6c1e-8f3d-4c2a-9e7b-1d2f3a4b5c6d"}})},
	504: {"the call's deadline passed before Upvest answered: retry creating calls with the same idempotency key.", exampleProblem(504, "Gateway Timeout", "urn:upvest-gateway:problem:deadline_exceeded", "DEADLINE_EXCEEDED",
		"the deadline expired before Upvest answered; a creating call may have taken effect: retry it with the same request_id",
		errorInfo("DEADLINE_EXCEEDED", "upvest-gateway"))},
	0: {"", nil},
}
