package registration

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"

	"github.com/google/uuid"

	"github.com/upvest-gateway/gateway/internal/upstream"
	"github.com/upvest-gateway/gateway/internal/webhook"
)

// Categories are the event categories the gateway serves: its Watch RPCs
// stream these and nothing else.
var Categories = []string{"VIRTUAL_CASH_INCREASE", "VIRTUAL_CASH_DECREASE", "TOPUP", "DIRECT_DEBIT", "WITHDRAWAL", "CASH_BALANCE"}

// DefaultTitle names the gateway's subscriptions in Upvest's lists.
const DefaultTitle = "upvest-gateway"

// Upstream limits of a subscription.
const (
	maxTitle       = 100
	maxURL         = 1000
	MinPackageSize = 100
	MaxPackageSize = 1 << 20
)

// Subscription is the subscription the gateway wants.
type Subscription struct {
	URL            string   // where Upvest delivers: the gateway's public webhook URL
	Title          string   // default DefaultTitle
	Categories     []string // default Categories
	MaxPackageSize int      // bytes per delivery; 0 leaves Upvest's choice
}

// Check reports what is wrong with s, naming the field; the zero Title and
// Categories are valid (they take the defaults).
func (s Subscription) Check() error {
	u, err := url.Parse(s.URL)
	switch {
	case s.URL == "":
		return errors.New("the URL is required")
	case err != nil:
		return errors.New("the URL is not a valid URL")
	case u.User != nil:
		return errors.New("the URL must not contain user info")
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "", u.Opaque != "":
		return fmt.Errorf("the URL %q is not an absolute https URL", s.URL)
	case u.Fragment != "":
		return fmt.Errorf("the URL %q must not have a fragment", s.URL)
	case len(s.URL) > maxURL:
		return fmt.Errorf("the URL is longer than %d characters", maxURL)
	case len(s.Title) > maxTitle:
		return fmt.Errorf("the title is longer than %d characters", maxTitle)
	case s.MaxPackageSize != 0 && (s.MaxPackageSize < MinPackageSize || s.MaxPackageSize > MaxPackageSize):
		return fmt.Errorf("the package size %d is outside %d..%d bytes", s.MaxPackageSize, MinPackageSize, MaxPackageSize)
	}
	return nil
}

func (s Subscription) withDefaults() Subscription {
	if s.Title == "" {
		s.Title = DefaultTitle
	}
	if len(s.Categories) == 0 {
		s.Categories = Categories
	}
	s.Categories = slices.Clone(s.Categories)
	return s
}

// Result is what Register found and did.
type Result struct {
	// Webhook is our subscription, enabled, as Upvest last answered.
	Webhook upstream.Webhook
	Created bool // Register created it
	Updated bool // Register changed it (enabled it, or its title, categories or package size)
	// Removed are duplicates of ours (the same URL) that Register deleted.
	Removed []string
	// IDs are every subscription of ours seen: the kept one and the
	// removed duplicates, whose deliveries already under way are ours too.
	IDs []string
	// Elsewhere are subscriptions with our title that deliver to another
	// URL: an earlier public URL, or another deployment. Register leaves
	// them alone; an operator removes them with `gateway webhooks delete`.
	Elsewhere []upstream.Webhook
}

// Option adjusts Register.
type Option interface{ applyRegister(*options) }

type options struct {
	logger *slog.Logger
	bind   *webhook.Subscriptions
}

type optionFunc func(*options)

func (f optionFunc) applyRegister(o *options) { f(o) }

// WithLogger logs what Register changes.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) {
		if l != nil {
			o.logger = l
		}
	})
}

// BindTo adds every subscription id of ours to subs (the webhook
// receiver's tenant binding) as soon as it is known, before the
// subscription is enabled, so that its first deliveries are already ours.
func BindTo(subs *webhook.Subscriptions) Option {
	return optionFunc(func(o *options) { o.bind = subs })
}

// maxRounds bounds the rounds of Register: a round starts again only when
// another run deleted, between our list and our update, the subscription
// we meant to keep.
const maxRounds = 3

// keyNamespace makes the create request's idempotency-key a name-based
// UUID of its body: the same subscription asked for twice, by two replicas
// at once, is one request to Upvest.
var keyNamespace = uuid.MustParse("3d5b1f52-3f0e-4c56-9a51-7d1ab0f7c2e4")

// Register makes sure want exists as Upvest's only subscription for its
// URL, with its categories, and enabled. c needs the scope webhooks:admin.
func Register(ctx context.Context, c *upstream.Client, want Subscription, opts ...Option) (*Result, error) {
	o := options{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if opt != nil {
			opt.applyRegister(&o)
		}
	}
	if err := want.Check(); err != nil {
		return nil, fmt.Errorf("webhook registration: %w", err)
	}
	want = want.withDefaults()
	r := &registrar{c: c, want: want, o: o, res: &Result{}}
	for round := 1; ; round++ {
		err := r.round(ctx)
		if err == nil {
			return r.res, nil
		}
		if !errors.Is(err, errGone) || round == maxRounds {
			return nil, fmt.Errorf("webhook registration: %w", err)
		}
		o.logger.Info("webhook registration: the subscription went away meanwhile; starting again", "url", want.URL)
	}
}

// errGone is a round ended by the subscription it meant to keep being
// deleted by someone else.
var errGone = errors.New("the subscription was deleted meanwhile")

type registrar struct {
	c    *upstream.Client
	want Subscription
	o    options
	res  *Result
}

func (r *registrar) round(ctx context.Context) error {
	ours, err := r.ours(ctx)
	if err != nil {
		return err
	}
	if len(ours) == 0 {
		created, err := r.create(ctx)
		if err != nil {
			return err
		}
		// Listed again: a replica creating at the same time is seen now
		// (by the later of the two, at least).
		if ours, err = r.ours(ctx); err != nil {
			return err
		}
		if !slices.ContainsFunc(ours, func(w upstream.Webhook) bool { return w.ID == created.ID }) {
			// Upvest replayed the answer of an earlier create with the same
			// body, whose subscription has been deleted since: a fresh key
			// makes a new one.
			r.o.logger.Info("webhook registration: the created subscription is gone (a replayed answer); creating anew", "webhook_id", created.ID)
			if created, err = r.createWithKey(ctx, uuid.NewString()); err != nil {
				return err
			}
			if ours, err = r.ours(ctx); err != nil {
				return err
			}
		}
		if len(ours) == 0 {
			return errGone
		}
	}
	keep, dups := ours[0], ours[1:]
	for _, d := range dups {
		err := r.c.DeleteWebhook(ctx, d.ID)
		if e, ok := upstream.AsError(err); err != nil && !(ok && e.StatusCode == http.StatusNotFound) {
			return fmt.Errorf("deleting the duplicate subscription %s: %w", d.ID, err)
		}
		r.res.Removed = append(r.res.Removed, d.ID)
		r.o.logger.Info("webhook registration: deleted a duplicate subscription", "webhook_id", d.ID, "kept", keep.ID, "url", d.URL)
	}
	if r.matches(keep) {
		r.res.Webhook = keep
		return nil
	}
	enabled := true
	upd := upstream.UpdateWebhookRequest{Title: &r.want.Title, URL: &r.want.URL, Enabled: &enabled, Type: r.want.Categories}
	if r.want.MaxPackageSize != 0 {
		upd.Config = &upstream.WebhookConfig{MaxPackageSize: r.want.MaxPackageSize}
	}
	w, err := r.c.UpdateWebhook(ctx, keep.ID, upd)
	if e, ok := upstream.AsError(err); ok && e.StatusCode == http.StatusNotFound {
		return errGone
	}
	if err != nil {
		return fmt.Errorf("updating the subscription %s: %w", keep.ID, err)
	}
	if !w.Enabled {
		return fmt.Errorf("the subscription %s is still disabled after enabling it", w.ID)
	}
	r.res.Webhook, r.res.Updated = *w, true
	r.o.logger.Info("webhook registration: subscription updated and enabled", "webhook_id", w.ID, "url", w.URL, "type", w.Type)
	return nil
}

// matches reports whether w is as wanted already.
func (r *registrar) matches(w upstream.Webhook) bool {
	return w.Enabled && w.URL == r.want.URL && w.Title == r.want.Title && sameSet(w.Type, r.want.Categories) &&
		(r.want.MaxPackageSize == 0 || w.Config.MaxPackageSize == r.want.MaxPackageSize)
}

func (r *registrar) create(ctx context.Context) (*upstream.Webhook, error) {
	body, err := json.Marshal(r.createRequest())
	if err != nil {
		return nil, err
	}
	return r.createWithKey(ctx, uuid.NewSHA1(keyNamespace, body).String())
}

func (r *registrar) createRequest() upstream.CreateWebhookRequest {
	in := upstream.CreateWebhookRequest{Title: r.want.Title, URL: r.want.URL, Type: r.want.Categories}
	if r.want.MaxPackageSize != 0 {
		in.Config = &upstream.WebhookConfig{MaxPackageSize: r.want.MaxPackageSize}
	}
	return in
}

func (r *registrar) createWithKey(ctx context.Context, key string) (*upstream.Webhook, error) {
	w, err := r.c.CreateWebhook(ctx, r.createRequest(), upstream.WithIdempotencyKey(key))
	if err != nil {
		return nil, fmt.Errorf("creating the subscription: %w", err)
	}
	if err := r.bind(w.ID); err != nil {
		return nil, err
	}
	r.res.Created = true
	r.o.logger.Info("webhook registration: subscription created", "webhook_id", w.ID, "url", w.URL, "enabled", w.Enabled)
	return w, nil
}

// ours lists every subscription delivering to our URL, oldest first, and
// binds them; it notes the ones with our title delivering elsewhere.
func (r *registrar) ours(ctx context.Context) ([]upstream.Webhook, error) {
	all, err := ListAll(ctx, r.c)
	if err != nil {
		return nil, err
	}
	var ours []upstream.Webhook
	r.res.Elsewhere = r.res.Elsewhere[:0]
	for _, w := range all {
		switch {
		case w.URL == r.want.URL:
			ours = append(ours, w)
		case w.Title == r.want.Title:
			r.res.Elsewhere = append(r.res.Elsewhere, w)
		}
	}
	slices.SortFunc(ours, func(a, b upstream.Webhook) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	for _, w := range ours {
		if err := r.bind(w.ID); err != nil {
			return nil, err
		}
	}
	return ours, nil
}

func (r *registrar) bind(id string) error {
	if !slices.Contains(r.res.IDs, id) {
		r.res.IDs = append(r.res.IDs, id)
	}
	if r.o.bind == nil {
		return nil
	}
	if err := r.o.bind.Add(id); err != nil {
		return fmt.Errorf("subscription %q: %w", id, err)
	}
	return nil
}

// maxPages bounds ListAll: a tenant has a handful of subscriptions, and a
// list that never ends is a broken one.
const maxPages = 100

// ListAll reads every subscription of the tenant, a page of 1000 at a time,
// oldest first.
func ListAll(ctx context.Context, c *upstream.Client) ([]upstream.Webhook, error) {
	var all []upstream.Webhook
	p := upstream.ListParams{Limit: 1000, Sort: "created_at", Order: "ASC"}
	for range maxPages {
		page, err := c.ListWebhooks(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("listing the subscriptions: %w", err)
		}
		all = append(all, page.Data...)
		p.Offset += len(page.Data)
		if len(page.Data) == 0 || p.Offset >= page.Meta.TotalCount {
			return all, nil
		}
	}
	return nil, fmt.Errorf("listing the subscriptions: more than %d pages", maxPages)
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}
