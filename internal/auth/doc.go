// Package auth decides who a gRPC caller is, what it may call, for which
// account groups, and how much: authentication, a policy file, per-caller
// limits, and the interceptors that apply them in that order.
//
// # Who
//
// A caller is identified by, in this order:
//   - a bearer token (metadata "authorization: Bearer <JWT>"), when a
//     JWTVerifier is configured: a JWT signed by a key of the JWKS, for the
//     configured issuer and audience, unexpired; the identity is a claim
//     (default "sub"). For callers behind a mesh that terminates TLS.
//   - a verified client certificate (mutual TLS): its first URI SAN, such as
//     a SPIFFE id, else its subject common name.
//   - for REST calls, which reach the gRPC server over the in-memory
//     connection, the client certificate the HTTP listener verified, as
//     forwarded by Guard.RESTMetadata (see RESTCallerMetadata).
//
// With WithUnauthenticated every caller is AnonymousIdentity instead; that
// mode is for development on loopback and must be chosen explicitly.
//
// # What
//
// A Policy (YAML, see ParsePolicy) grants each identity method patterns,
// optionally a set of account groups, and limits. Anything not granted is
// refused (default deny).
//
// # Statuses
//
// Every refusal is a gRPC status with a google.rpc.ErrorInfo of domain
// ErrorDomain: UNAUTHENTICATED (reason UNAUTHENTICATED or UNKNOWN_CALLER),
// PERMISSION_DENIED (METHOD_NOT_ALLOWED, ACCOUNT_GROUP_NOT_ALLOWED,
// ACCOUNT_GROUP_REQUIRED), RESOURCE_EXHAUSTED with a google.rpc.RetryInfo
// (CALLER_RATE_LIMITED, CALLER_STREAM_LIMIT), or UNAVAILABLE
// (KEYS_UNAVAILABLE) when no token can be verified for want of keys.
// Messages name the method and never another caller's data; no token or key
// material ever reaches a message or a log line.
package auth
