package webhook

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/upvest-gateway/gateway/internal/events"
)

// Tenant binding. Every Upvest tenant's deliveries are signed with the same
// Upvest keys, so a correct signature says a delivery comes from Upvest, not
// that it is ours: another tenant could register our URL as its webhook. A
// delivery is ours when
//
//   - every event names one of our webhook subscriptions (webhook_id, in the
//     body, which the signature covers through its digest), when the gateway
//     knows its subscriptions: the allow-list (GATEWAY_WEBHOOK_IDS) and the
//     ones added through Subscriptions.Add; and
//   - upvest-client-id is our client id, when the signature covers that
//     header. Upvest's v6 delivery signatures, as far as is known (and as the
//     simulator signs them), cover @method, @path, content-type,
//     content-length and digest only; a header the signature does not cover
//     could be set by anyone on the way, so it binds nothing and is ignored.
//
// With no subscription known the client-id binding alone applies, and the
// receiver says so when it starts: deliveries of another tenant whose
// signature does not cover upvest-client-id cannot be told apart then.
// A refused delivery is answered 403 and nothing of it is stored.

// Subscriptions is the set of our Upvest webhook subscription ids. It is
// safe for concurrent use: the receiver reads it for every delivery, and
// whatever manages the gateway's subscriptions adds to it.
type Subscriptions struct {
	mu  sync.RWMutex
	ids map[string]struct{}
}

// NewSubscriptions returns the set holding ids (UUIDs; see Add).
func NewSubscriptions(ids ...string) (*Subscriptions, error) {
	s := &Subscriptions{ids: map[string]struct{}{}}
	if err := s.Add(ids...); err != nil {
		return nil, err
	}
	return s, nil
}

// Add adds subscription ids, e.g. of a webhook subscription the gateway has
// just created with Upvest. Each must be a UUID; none is added when one is
// not.
func (s *Subscriptions) Add(ids ...string) error {
	canon := make([]string, 0, len(ids))
	for i, id := range ids {
		c, ok := events.CanonicalUUID(strings.TrimSpace(id))
		if !ok {
			return fmt.Errorf("webhook: subscription id #%d is not a UUID", i+1)
		}
		canon = append(canon, c)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = map[string]struct{}{}
	}
	for _, c := range canon {
		s.ids[c] = struct{}{}
	}
	return nil
}

// Remove forgets a subscription id, e.g. of a deleted subscription.
func (s *Subscriptions) Remove(id string) {
	if c, ok := events.CanonicalUUID(strings.TrimSpace(id)); ok {
		s.mu.Lock()
		delete(s.ids, c)
		s.mu.Unlock()
	}
}

// Contains reports whether id (canonical form) is one of ours.
func (s *Subscriptions) Contains(id string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.ids[id]
	return ok
}

// Len is how many subscriptions are known.
func (s *Subscriptions) Len() int {
	if s == nil {
		return 0
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.ids)
}

// IDs returns the known ids, sorted.
func (s *Subscriptions) IDs() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.ids))
	for id := range s.ids {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// maxWebhookIDs bounds an allow-list setting: a tenant has a handful of
// subscriptions.
const maxWebhookIDs = 1000

// ParseWebhookIDs reads an allow-list setting: subscription ids (UUIDs)
// separated by commas or white space, in canonical lower-case form, without
// duplicates. An empty value is an empty list. Errors name the position of
// a bad entry, never its value.
func ParseWebhookIDs(v string) ([]string, error) {
	fields := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
	if len(fields) > maxWebhookIDs {
		return nil, fmt.Errorf("more than %d webhook ids", maxWebhookIDs)
	}
	var out []string
	for i, f := range fields {
		c, ok := events.CanonicalUUID(f)
		if !ok {
			return nil, fmt.Errorf("entry %d is not a UUID", i+1)
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}
