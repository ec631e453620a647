package main

import (
	"context"
	"fmt"
	"log/slog"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	adminv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/admin/v1"
	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/auth"
	"github.com/upvest-gateway/gateway/internal/server"
	"github.com/upvest-gateway/gateway/internal/service"
	"github.com/upvest-gateway/gateway/internal/tlsconfig"
)

// publicMethods need no credentials: health checks, which orchestrators
// make without any.
var publicMethods = []string{
	healthpb.Health_Check_FullMethodName,
	healthpb.Health_Watch_FullMethodName,
}

// policyMethods are the methods a policy may grant: the four services, the
// operators' quarantine service, and server reflection for tools such as
// grpcurl.
func policyMethods() []string {
	return auth.MethodsOf(
		&gatewayv1.VirtualCashService_ServiceDesc,
		&gatewayv1.TopupService_ServiceDesc,
		&gatewayv1.PaymentsService_ServiceDesc,
		&gatewayv1.CashBalanceService_ServiceDesc,
		&adminv1.EventQuarantineService_ServiceDesc,
		&reflectionpb.ServerReflection_ServiceDesc,
	)
}

// loadSecurity reads the TLS, policy and key files the configuration names
// and returns the server options that put them in force: TLS on every
// listener, and the guard in front of every RPC. Its errors name the
// setting and never quote a key.
func loadSecurity(ctx context.Context, cfg Config, logger *slog.Logger) ([]server.Option, error) {
	var opts []server.Option
	if cfg.TLSCertFile != "" {
		var tlsOpts []tlsconfig.Option
		tlsOpts = append(tlsOpts, tlsconfig.WithLogger(logger))
		if cfg.TLSClientCAFile != "" {
			tlsOpts = append(tlsOpts, tlsconfig.WithClientCAFile(cfg.TLSClientCAFile))
		}
		t, err := tlsconfig.New(cfg.TLSCertFile, cfg.TLSKeyFile, tlsOpts...)
		if err != nil {
			return nil, configErr("GATEWAY_TLS_CERT_FILE", "and its key or client CA bundle cannot be used: %v", err)
		}
		opts = append(opts, server.WithTLS(t))
	}

	guardOpts := []auth.Option{auth.WithLogger(logger), auth.WithPublicMethods(publicMethods...)}
	if cfg.PolicyFile != "" {
		p, err := auth.LoadPolicyFile(cfg.PolicyFile, policyMethods(), auth.WithLogger(logger))
		if err != nil {
			return nil, configErr("GATEWAY_POLICY_FILE", "%v", err)
		}
		guardOpts = append(guardOpts, auth.WithPolicyFile(p))
	}
	if cfg.JWTJWKSFile != "" || cfg.JWTJWKSURL != "" {
		v, err := jwtVerifier(ctx, cfg, logger)
		if err != nil {
			return nil, err
		}
		guardOpts = append(guardOpts, auth.WithJWT(v))
	}
	if !cfg.Authenticated() {
		guardOpts = append(guardOpts, auth.WithUnauthenticated())
		if cfg.PolicyFile == "" {
			guardOpts = append(guardOpts, auth.WithPolicy(auth.AllowAll()))
		}
		insecure, _ := cfg.InsecureUnauthenticated() // checked by ParseConfig
		if insecure {
			logger.Warn("callers are NOT authenticated and the API listens beyond loopback: anyone who reaches it can move money (GATEWAY_INSECURE_ALLOW_UNAUTHENTICATED)")
		} else {
			logger.Warn("callers are not authenticated: the API listens on loopback only; set GATEWAY_TLS_CLIENT_CA_FILE or a JWKS, with GATEWAY_POLICY_FILE, to serve other hosts")
		}
	}
	guard, err := auth.NewGuard(guardOpts...)
	if err != nil {
		return nil, configErr("GATEWAY_POLICY_FILE", "%v", err)
	}
	opts = append(opts, server.WithGuard(guard))
	if cfg.Authenticated() {
		// The policy decides who may operate the quarantine; without
		// authenticated callers, only callers on this host may.
		opts = append(opts, server.WithServiceOptions(service.WithAdminGuard(nil)))
	}
	return opts, nil
}

// jwtVerifier loads the JWKS (from its file, or fetched once now from its
// URL so that a wrong one stops start-up) and the token rules.
func jwtVerifier(ctx context.Context, cfg Config, logger *slog.Logger) (*auth.JWTVerifier, error) {
	var (
		keys *auth.JWKS
		err  error
		env  = "GATEWAY_JWT_JWKS_FILE"
	)
	if cfg.JWTJWKSFile != "" {
		keys, err = auth.JWKSFromFile(cfg.JWTJWKSFile, auth.WithLogger(logger))
	} else {
		env = "GATEWAY_JWT_JWKS_URL"
		keys, err = auth.JWKSFromURL(cfg.JWTJWKSURL, auth.WithLogger(logger))
		if err == nil {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), openTimeout)
			defer cancel()
			err = keys.Refresh(ctx)
		}
	}
	if err != nil {
		return nil, configErr(env, "cannot be used: %v", err)
	}
	v, err := auth.NewJWTVerifier(keys, cfg.JWTIssuer, cfg.JWTAudience, auth.WithIdentityClaim(cfg.JWTIdentityClaim))
	if err != nil {
		return nil, fmt.Errorf("bearer tokens: %w", err)
	}
	return v, nil
}
