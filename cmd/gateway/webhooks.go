package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/upvest-gateway/gateway/internal/upstream"
	"github.com/upvest-gateway/gateway/internal/webhook/registration"
)

// The operator's commands for the tenant's webhook subscriptions at Upvest:
//
//	gateway webhooks list              # every subscription of the tenant
//	gateway webhooks register          # GATEWAY_WEBHOOK_PUBLIC_URL's, as start-up does
//	gateway webhooks delete ID...      # end subscriptions
//
// Unlike `gateway events`, they talk to Upvest, not to a running gateway:
// with the gateway's own configuration (the UPVEST_* settings and their
// flags), its signed client, and a token holding only the webhook scope
// the command needs.

const webhooksUsage = `Usage:
  gateway webhooks list [flags]
  gateway webhooks register [--webhook-public-url URL] [flags]
  gateway webhooks delete ID... [flags]

Lists the tenant's webhook subscriptions at Upvest, registers the gateway's
own (one subscription for GATEWAY_WEBHOOK_PUBLIC_URL, for the categories the
gateway serves, enabled: created, or updated, never duplicated; the gateway
does the same at start-up when that setting is set), or deletes some.

They use the gateway's configuration: the UPVEST_* variables or their flags
(gateway -h lists them).
`

// webhooksTimeout bounds one command.
const webhooksTimeout = time.Minute

// runWebhooks runs `gateway webhooks ...`.
func runWebhooks(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) int {
	usage := func(msg string) int {
		if msg != "" {
			fmt.Fprintf(stderr, "gateway webhooks: %s\n", msg)
		}
		fmt.Fprint(stderr, webhooksUsage)
		return exitConfig
	}
	if len(args) == 0 {
		return usage("")
	}
	cmd := args[0]
	if cmd == "-h" || cmd == "--help" {
		fmt.Fprint(stdout, webhooksUsage)
		return exitOK
	}
	cfg, operands, err := parseSettings(env, args[1:], true)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, webhooksUsage)
		return exitOK
	}
	if err == nil {
		err = cfg.validate()
	}
	if err == nil && cfg.Simulate {
		err = &ConfigError{Reason: "--simulate has no Upvest to manage subscriptions at: its simulator lives inside a running gateway"}
	}
	if err != nil {
		return usage(err.Error())
	}
	var scope string
	switch {
	case cmd == "list" && len(operands) == 0:
		scope = upstream.ScopeWebhooksRead
	case cmd == "register" && len(operands) == 0:
		if cfg.WebhookPublicURL == "" {
			return usage(configErr("GATEWAY_WEBHOOK_PUBLIC_URL", "is required: the URL Upvest is to deliver to").Error())
		}
		scope = upstream.ScopeWebhooksAdmin
	case cmd == "delete" && len(operands) > 0:
		for _, id := range operands {
			if !isUUID(id) {
				return usage(fmt.Sprintf("%q is not a subscription id (a UUID)", printableText(id)))
			}
		}
		scope = upstream.ScopeWebhooksAdmin
	default:
		return usage(fmt.Sprintf("%q with %d argument(s) is not a webhooks command", printableText(cmd), len(operands)))
	}

	// No log: the command's one line of outcome says what went wrong (a
	// refused token request included), and a log line written by the
	// client's token goroutine could come after it.
	logger := slog.New(slog.DiscardHandler)
	ucfg, err := upvestConfig(cfg)
	if err != nil {
		return fail(stderr, err)
	}
	ucfg.Scopes = []string{scope}
	client, err := newUpstreamClient(cfg, ucfg, logger)
	if err != nil {
		return fail(stderr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, webhooksTimeout)
	defer cancel()
	switch cmd {
	case "list":
		err = listWebhooks(ctx, client, cfg.WebhookPublicURL, stdout)
	case "register":
		err = registerWebhook(ctx, client, cfg, stdout)
	case "delete":
		err = deleteWebhooks(ctx, client, operands, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "gateway webhooks %s: %s\n", cmd, printableText(err.Error()))
		return exitFailure
	}
	return exitOK
}

// listWebhooks prints every subscription, oldest first; the gateway's
// (delivering to publicURL) is marked.
func listWebhooks(ctx context.Context, c *upstream.Client, publicURL string, out io.Writer) error {
	all, err := registration.ListAll(ctx, c)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tENABLED\tCREATED\tTITLE\tURL\tTYPE")
	for _, w := range all {
		url := printableText(w.URL)
		if publicURL != "" && w.URL == publicURL {
			url += " (GATEWAY_WEBHOOK_PUBLIC_URL)"
		}
		fmt.Fprintf(tw, "%s\t%t\t%s\t%s\t%s\t%s\n", printableText(w.ID), w.Enabled, w.CreatedAt.UTC().Format(time.RFC3339),
			orDash(printableText(w.Title)), url, printableText(strings.Join(w.Type, ",")))
	}
	return tw.Flush()
}

func registerWebhook(ctx context.Context, c *upstream.Client, cfg Config, out io.Writer) error {
	want, _, err := cfg.Registration() // checked by validate
	if err != nil {
		return err
	}
	res, err := registration.Register(ctx, c, want)
	if err != nil {
		return err
	}
	w := res.Webhook
	what := "unchanged"
	switch {
	case res.Created:
		what = "created"
	case res.Updated:
		what = "updated"
	}
	fmt.Fprintf(out, "%s %s (%s): enabled=%t url=%s type=%s\n", what, w.ID, printableText(w.Title), w.Enabled, printableText(w.URL), strings.Join(w.Type, ","))
	for _, id := range res.Removed {
		fmt.Fprintf(out, "deleted duplicate %s\n", id)
	}
	for _, o := range res.Elsewhere {
		fmt.Fprintf(out, "note: %s, also titled %q, delivers to %s (enabled=%t): 'gateway webhooks delete %s' if it is no longer used\n",
			o.ID, printableText(o.Title), printableText(o.URL), o.Enabled, o.ID)
	}
	return nil
}

func deleteWebhooks(ctx context.Context, c *upstream.Client, ids []string, out io.Writer) error {
	for _, id := range ids {
		err := c.DeleteWebhook(ctx, id)
		if e, ok := upstream.AsError(err); ok && e.StatusCode == http.StatusNotFound {
			return fmt.Errorf("no subscription %s: %w", id, err)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "deleted %s\n", id)
	}
	return nil
}
