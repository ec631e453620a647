package upvestsim

import (
	"cmp"
	"context"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
)

const categoryAll = "ALL"

// webhookCategories are the subscription categories upstream accepts.
var webhookCategories = []string{
	categoryAll, "USER", "USER_CHECK", "ORDER", "ORDER_CANCELLATION", "EXECUTION", "POSITION",
	"CASH_BALANCE", "ACCOUNT", "ACCOUNT_GROUP", "REPORT", "TREASURY_REPORT", "DIRECT_DEBIT",
	"WITHDRAWAL", "PORTFOLIO", "PORTFOLIO_ALLOCATION", "PORTFOLIO_ORDER", "CORPORATE_ACTION",
	"ACCOUNT_VALUATION", "INTRADAY_ACCOUNT_VALUATION", "CASH_TRANSACTION", "SECURITY_TRANSACTION",
	"ACCOUNT_LIQUIDATION", "ACCOUNT_RETURNS", "VIRTUAL_CASH_INCREASE", "VIRTUAL_CASH_DECREASE",
	"FEE_COLLECTION", "TOPUP",
}

// Webhook subscription limits of the API description.
const (
	maxWebhookTitle   = 100
	maxWebhookURL     = 1000
	minPackageSize    = 100
	maxPackageSize    = 1 << 20
	defaultPackageLen = 10240
)

var webhookDelayPattern = regexp.MustCompile(`^[1-9][0-9]?[sm]$`)

type webhookConfigJSON struct {
	// Delay is the maximum time upstream collects events before delivering.
	// The Sim delivers as soon as events are pending, which honours any
	// maximum, so it only echoes it.
	Delay          string `json:"delay"`
	MaxPackageSize int    `json:"max_package_size"` // bytes per delivery body
}

func defaultWebhookConfig() webhookConfigJSON {
	return webhookConfigJSON{Delay: "5s", MaxPackageSize: defaultPackageLen}
}

// webhookJSON is a webhook subscription on the wire.
type webhookJSON struct {
	ID        string            `json:"id"`
	CreatedAt timestamp         `json:"created_at"`
	UpdatedAt timestamp         `json:"updated_at"`
	Title     string            `json:"title"`
	URL       string            `json:"url"`
	Enabled   bool              `json:"enabled"`
	Type      []string          `json:"type"`
	Config    webhookConfigJSON `json:"config"`
}

// subscription is a webhook subscription with its delivery queue. Its
// fields are guarded by Sim.mu; one goroutine (deliverLoop) delivers it.
type subscription struct {
	json    webhookJSON
	pending []Event // queued events; the head batch may be in delivery
	tests   int     // test deliveries asked for by POST /webhooks/{id}/test
	wake    chan struct{}
	ctx     context.Context // ends when the subscription is deleted or the Sim closed
	cancel  context.CancelFunc
}

func (sub *subscription) wants(eventType string) bool {
	if !sub.json.Enabled {
		return false
	}
	c := category(eventType)
	for _, t := range sub.json.Type {
		if t == categoryAll || t == c {
			return true
		}
	}
	return false
}

func (sub *subscription) enqueue(ev Event) {
	sub.pending = append(sub.pending, ev)
	sub.signal()
}

// signal wakes the delivery goroutine without blocking.
func (sub *subscription) signal() {
	select {
	case sub.wake <- struct{}{}:
	default:
	}
}

// addSubscription registers w (id and times are assigned here) and starts
// its delivery goroutine unless the Sim is closed; s.mu must be held.
func (s *Sim) addSubscription(w webhookJSON) *subscription {
	now := timestamp(s.now())
	w.ID, w.CreatedAt, w.UpdatedAt = s.ids.uuid(), now, now
	ctx, cancel := context.WithCancel(context.Background())
	sub := &subscription{json: w, wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel}
	s.subs = append(s.subs, sub)
	select {
	case <-s.done:
		cancel()
	default:
		s.wg.Add(1)
		go s.deliverLoop(sub)
	}
	return sub
}

// findSubscription returns the subscription with id; s.mu must be held.
func (s *Sim) findSubscription(id string) (*subscription, error) {
	for _, sub := range s.subs {
		if sub.json.ID == id {
			return sub, nil
		}
	}
	return nil, notFound("no webhook %s", id)
}

// webhookConfigRequest is the config object of a create or update body.
type webhookConfigRequest struct {
	Delay          *string `json:"delay"`
	MaxPackageSize *int    `json:"max_package_size"`
}

// webhookRequest is the body of PATCH /webhooks/{id}: every field optional.
type webhookRequest struct {
	Title   *string               `json:"title"`
	URL     *string               `json:"url"`
	Enabled *bool                 `json:"enabled"`
	Type    []string              `json:"type"`
	Config  *webhookConfigRequest `json:"config"`
}

// webhookCreate is the body of POST /webhooks: title and url required, no
// enabled (new subscriptions start as the Sim is configured).
type webhookCreate struct {
	Title  *string               `json:"title"`
	URL    *string               `json:"url"`
	Type   []string              `json:"type"`
	Config *webhookConfigRequest `json:"config"`
}

func (req *webhookCreate) update() webhookRequest {
	return webhookRequest{Title: req.Title, URL: req.URL, Type: req.Type, Config: req.Config}
}

func (req *webhookCreate) check(f *fields) {
	f.present("title", req.Title, true)
	f.present("url", req.URL, true)
	u := req.update()
	u.check(f)
}

// check validates the fields that are present.
func (req *webhookRequest) check(f *fields) {
	if req.Title != nil && (*req.Title == "" || len(*req.Title) > maxWebhookTitle) {
		f.fail("title", "must have 1 to %d characters", maxWebhookTitle)
	}
	if req.URL != nil {
		if len(*req.URL) > maxWebhookURL {
			f.fail("url", "is longer than %d characters", maxWebhookURL)
		} else if err := checkWebhookURL(*req.URL); err != nil {
			f.fail("url", "%v", err)
		}
	}
	if req.Type != nil && len(req.Type) == 0 {
		f.fail("type", "must name at least one category")
	}
	for _, t := range req.Type {
		if !slices.Contains(webhookCategories, t) {
			f.fail("type", "unknown category %q", t)
		}
	}
	if c := req.Config; c != nil {
		if c.Delay != nil && !webhookDelayPattern.MatchString(*c.Delay) {
			f.fail("config.delay", "%q does not match %s", *c.Delay, webhookDelayPattern)
		}
		if c.MaxPackageSize != nil && (*c.MaxPackageSize < minPackageSize || *c.MaxPackageSize > maxPackageSize) {
			f.fail("config.max_package_size", "%d is outside %d..%d", *c.MaxPackageSize, minPackageSize, maxPackageSize)
		}
	}
}

// apply copies the present fields onto w.
func (req *webhookRequest) apply(w *webhookJSON) {
	if req.Title != nil {
		w.Title = *req.Title
	}
	if req.URL != nil {
		w.URL = *req.URL
	}
	if req.Enabled != nil {
		w.Enabled = *req.Enabled
	}
	if req.Type != nil {
		w.Type = slices.Clone(req.Type)
	}
	if c := req.Config; c != nil {
		if c.Delay != nil {
			w.Config.Delay = *c.Delay
		}
		if c.MaxPackageSize != nil {
			w.Config.MaxPackageSize = *c.MaxPackageSize
		}
	}
}

// createWebhook is POST /webhooks. New subscriptions start disabled unless
// Config.EnableNewWebhooks, as upstream may create them.
func (s *Sim) createWebhook(c *call) (*reply, error) {
	req, p := decodeRequest[webhookCreate](c.r.Header.Get("Content-Type"), c.body)
	if p != nil {
		return nil, p
	}
	w := webhookJSON{Enabled: s.cfg.EnableNewWebhooks, Type: []string{categoryAll}, Config: defaultWebhookConfig()}
	u := req.update()
	u.apply(&w)
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.addSubscription(w)
	rep := jsonReply(http.StatusCreated, sub.json)
	rep.acted = true
	return rep, nil
}

// listWebhooks is GET /webhooks.
func (s *Sim) listWebhooks(c *call) (*reply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	items := make([]webhookJSON, len(s.subs))
	for i, sub := range s.subs {
		items[i] = sub.json
	}
	keys := sortKeys[webhookJSON]{
		"created_at": func(a, b webhookJSON) int { return a.CreatedAt.time().Compare(b.CreatedAt.time()) },
		"updated_at": func(a, b webhookJSON) int { return a.UpdatedAt.time().Compare(b.UpdatedAt.time()) },
		"title":      func(a, b webhookJSON) int { return strings.Compare(a.Title, b.Title) },
		"url":        func(a, b webhookJSON) int { return strings.Compare(a.URL, b.URL) },
		"enabled":    func(a, b webhookJSON) int { return cmp.Compare(boolRank(a.Enabled), boolRank(b.Enabled)) },
	}
	return jsonReply(http.StatusOK, paginate(items, c.page, keys)), nil
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// getWebhook is GET /webhooks/{webhook_id}.
func (s *Sim) getWebhook(c *call) (*reply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, err := s.findSubscription(c.params["webhook_id"])
	if err != nil {
		return nil, err
	}
	return jsonReply(http.StatusOK, sub.json), nil
}

// updateWebhook is PATCH /webhooks/{webhook_id}. Enabling a subscription
// resumes its deliveries; events emitted while it was disabled are not sent.
func (s *Sim) updateWebhook(c *call) (*reply, error) {
	req, p := decodeRequest[webhookRequest](c.r.Header.Get("Content-Type"), c.body)
	if p != nil {
		return nil, p
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, err := s.findSubscription(c.params["webhook_id"])
	if err != nil {
		return nil, err
	}
	req.apply(&sub.json)
	sub.json.UpdatedAt = timestamp(s.now())
	sub.signal()
	return jsonReply(http.StatusOK, sub.json), nil
}

// deleteWebhook is DELETE /webhooks/{webhook_id}: its queue is dropped and
// its delivery goroutine stopped.
func (s *Sim) deleteWebhook(c *call) (*reply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, err := s.findSubscription(c.params["webhook_id"])
	if err != nil {
		return nil, err
	}
	sub.cancel()
	s.subs = slices.DeleteFunc(s.subs, func(x *subscription) bool { return x == sub })
	return emptyReply(http.StatusNoContent), nil
}

// testWebhook is POST /webhooks/{webhook_id}/test: one signed delivery with
// an empty payload, answered 202 before it is sent.
func (s *Sim) testWebhook(c *call) (*reply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, err := s.findSubscription(c.params["webhook_id"])
	if err != nil {
		return nil, err
	}
	sub.tests++
	sub.signal()
	return emptyReply(http.StatusAccepted), nil
}

// PauseWebhooks holds (true) or resumes (false) every webhook delivery; an
// attempt already under way completes.
func (s *Sim) PauseWebhooks(paused bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paused = paused
	for _, sub := range s.subs {
		sub.signal()
	}
}

// Subscription is a webhook subscription as the Sim holds it.
type Subscription struct {
	ID                   string
	CreatedAt, UpdatedAt time.Time
	Title, URL           string
	Enabled              bool
	Types                []string // categories; ALL for every one
	Delay                string
	MaxPackageSize       int
}

// Subscriptions returns the webhook subscriptions, in creation order: what
// a test checks a client's subscription management against.
func (s *Sim) Subscriptions() []Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Subscription, len(s.subs))
	for i, sub := range s.subs {
		w := sub.json
		out[i] = Subscription{ID: w.ID, CreatedAt: w.CreatedAt.time(), UpdatedAt: w.UpdatedAt.time(), Title: w.Title, URL: w.URL,
			Enabled: w.Enabled, Types: slices.Clone(w.Type), Delay: w.Config.Delay, MaxPackageSize: w.Config.MaxPackageSize}
	}
	return out
}

// subscriptionsJSON is GET /_sim/webhooks: the subscriptions as the API
// renders them.
func (s *Sim) subscriptionsJSON() []webhookJSON {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]webhookJSON, len(s.subs))
	for i, sub := range s.subs {
		out[i] = sub.json
		out[i].Type = slices.Clone(sub.json.Type)
	}
	return out
}
