// Package tlsconfig is the gateway's server TLS: a certificate and key from
// PEM files and, for mutual TLS, a client CA bundle, all replaced without a
// restart when the files change.
//
// The files are looked at on a handshake, at most once per check interval
// (default one second); a new pair or bundle that does not load keeps the
// previous one and is logged (paths and cause, never key material). Each
// handshake is served with the newest good pair and bundle.
//
// Server.GRPC is the configuration for the gRPC listener: ALPN h2, and with
// a client CA bundle every client must present a certificate issued by it.
// Server.GRPCCredentials wraps it for grpc.Creds, leaving the REST face's
// in-memory connection to the same gRPC server without TLS. Server.HTTP is for the
// HTTP listener (REST face, webhooks, probes): ALPN h2 and http/1.1, and a
// client certificate is verified when one is presented but not required,
// because Upvest's webhook deliveries and health probes carry none; REST
// calls are still refused without an identity by the authorization layer.
package tlsconfig
