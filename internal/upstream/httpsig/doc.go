// Package httpsig signs requests to, and verifies requests from, the Upvest
// Investment API with HTTP message signatures.
//
// Upvest uses two dialects of draft-ietf-httpbis-message-signatures:
//
//   - version 15 on every API call the gateway makes: the signature base
//     quotes component names ("@method": POST) and the body is covered by
//     content-digest (SHA-512);
//   - version 6 on the webhook deliveries Upvest sends us: the same
//     signature-input syntax, but unquoted names (@method: POST) and the body
//     covered by digest (SHA-256).
//
// The version travels in the upvest-signature-version header. ECDSA keys
// (P-256, P-384, P-521) always hash with SHA-512, whatever the curve, because
// that is what Upvest does; Ed25519 signs the raw base.
//
// Signing is the per-call CPU floor of the gateway and verification guards
// money-moving webhooks, so the package is deliberately strict: it never
// guesses at ambiguous input (duplicate labels, parameters or components,
// control characters in covered values), and its errors never carry key
// material, header values or other secrets.
package httpsig
