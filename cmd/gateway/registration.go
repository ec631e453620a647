package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/upvest-gateway/gateway/internal/upstream"
	"github.com/upvest-gateway/gateway/internal/webhook"
	"github.com/upvest-gateway/gateway/internal/webhook/registration"
)

// Start-up registration of the webhook subscription
// (GATEWAY_WEBHOOK_PUBLIC_URL). The first attempt runs before the gateway
// serves, so that the receiver starts bound to the subscription. When
// Upvest cannot be reached meanwhile, the gateway serves anyway (its API
// calls fail the same way, but its event streams do not) and keeps trying
// in the background; when Upvest refuses (bad credentials, a missing
// webhooks:admin scope, a URL it does not take), start-up stops: trying
// again would not help.

// Bounds of the attempts: the first, then the background ones.
var (
	registerFirstTimeout = 10 * time.Second
	registerTimeout      = 30 * time.Second
	registerBackoff      = time.Second
	registerMaxBackoff   = 5 * time.Minute
)

// startRegistration registers the subscription when configured, adding
// its ids to subs. The returned func stops the background attempts and
// waits for them.
func startRegistration(ctx context.Context, cfg Config, up *upvest, subs *webhook.Subscriptions, logger *slog.Logger) (func(), error) {
	want, ok, err := cfg.Registration()
	if err != nil || !ok {
		return func() {}, err
	}
	client, err := registrationClient(cfg, up.cfg, logger)
	if err != nil {
		return nil, err
	}
	attempt := func(ctx context.Context, timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		res, err := registration.Register(ctx, client, want, registration.BindTo(subs), registration.WithLogger(logger))
		if err != nil {
			return err
		}
		logRegistered(logger, res)
		return nil
	}
	err = attempt(ctx, registerFirstTimeout)
	switch {
	case err == nil:
		return func() {}, nil
	case refused(err):
		return nil, fmt.Errorf("GATEWAY_WEBHOOK_PUBLIC_URL: %w", err)
	}
	logger.Warn("webhook registration: not done yet; serving meanwhile and trying again in the background", "err", err)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for wait := registerBackoff; ; wait = min(2*wait, registerMaxBackoff) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			err := attempt(ctx, registerTimeout)
			switch {
			case err == nil:
				return
			case ctx.Err() != nil:
				return
			case refused(err):
				logger.Error("webhook registration: Upvest refuses it; not trying again: fix GATEWAY_WEBHOOK_PUBLIC_URL or the credentials, or register by hand ('gateway webhooks register')", "err", err)
				return
			}
			logger.Warn("webhook registration: failed; trying again", "err", err, "in", min(2*wait, registerMaxBackoff))
		}
	})
	return func() { cancel(); wg.Wait() }, nil
}

// registrationClient is a client of the tenant's Upvest holding the scopes
// that managing subscriptions needs, and no more: the client of every API
// call never holds them.
func registrationClient(cfg Config, ucfg upstream.Config, logger *slog.Logger) (*upstream.Client, error) {
	ucfg.Scopes = []string{upstream.ScopeWebhooksAdmin}
	return newUpstreamClient(cfg, ucfg, logger)
}

// refused reports whether Upvest answered err for good: a 4xx other than
// the ones a retry may get past.
func refused(err error) bool {
	e, ok := upstream.AsError(err)
	if !ok || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	switch e.StatusCode {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooManyRequests:
		return false
	}
	return e.StatusCode >= 400 && e.StatusCode < 500
}

func logRegistered(logger *slog.Logger, res *registration.Result) {
	w := res.Webhook
	logger.Info("webhook subscription registered", "webhook_id", w.ID, "url", w.URL, "type", w.Type, "enabled", w.Enabled,
		"created", res.Created, "updated", res.Updated, "removed_duplicates", res.Removed)
	for _, o := range res.Elsewhere {
		logger.Warn("webhook registration: a subscription with the gateway's title delivers elsewhere (an earlier public URL?); "+
			"delete it with 'gateway webhooks delete' if it is no longer used", "webhook_id", o.ID, "url", o.URL, "enabled", o.Enabled)
	}
}
