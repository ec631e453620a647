package events

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// DefaultSubject is the default subject prefix of the event log.
const DefaultSubject = "upvest.events"

// noAccountGroup stands in for the account group token of events whose object
// has none, so every subject has the same number of tokens.
const noAccountGroup = "_"

// ErrInvalidFilter is returned (wrapped) for a Filter naming an unknown family
// or type or an account group id that is not a UUID. Callers map it to
// INVALID_ARGUMENT.
var ErrInvalidFilter = errors.New("events: invalid filter")

// eventSubject is where an event is stored:
// <prefix>.<family>.<status>.<account group|_>, lower case.
func eventSubject(prefix string, e *Event) string {
	ag := e.AccountGroupID
	if ag == "" {
		ag = noAccountGroup
	}
	return prefix + "." + strings.ToLower(e.Family()) + "." + strings.ToLower(e.Status()) + "." + ag
}

// Filter selects events for a subscriber. Types and Families are alternatives
// (an event matches when its type is in Types or its family in Families);
// both empty means every type. AccountGroupID, when set, further restricts to
// that account group.
type Filter struct {
	Types          []string // full upstream types, e.g. "TOPUP.SETTLED"
	Families       []string // e.g. "TOPUP", "DIRECT_DEBIT"
	AccountGroupID string
}

// Subjects returns the JetStream filter subjects for f under prefix: one per
// family and per type not already covered by a family, sorted. Every filter
// is a subject filter, so JetStream selects the messages and nothing scans
// on our side. An invalid filter yields an error wrapping ErrInvalidFilter.
func (f Filter) Subjects(prefix string) ([]string, error) {
	ag := "*"
	if f.AccountGroupID != "" {
		id, ok := CanonicalUUID(f.AccountGroupID)
		if !ok {
			return nil, fmt.Errorf("%w: account_group_id is not a UUID", ErrInvalidFilter)
		}
		ag = id
	}
	families := make(map[string]bool, len(f.Families))
	for _, fam := range f.Families {
		if !knownFamilies[fam] {
			return nil, fmt.Errorf("%w: unknown event family %q", ErrInvalidFilter, truncate(fam, 40))
		}
		families[fam] = true
	}
	var subjects []string
	for fam := range families {
		subjects = append(subjects, prefix+"."+strings.ToLower(fam)+".*."+ag)
	}
	for _, t := range f.Types {
		if reason := validType(t); reason != "" {
			return nil, fmt.Errorf("%w: event type %q: %s", ErrInvalidFilter, truncate(t, 80), reason)
		}
		fam, status, _ := strings.Cut(t, ".")
		if !knownFamilies[fam] {
			return nil, fmt.Errorf("%w: event type %q: unknown event family", ErrInvalidFilter, truncate(t, 80))
		}
		if families[fam] {
			continue // JetStream refuses overlapping filters
		}
		subjects = append(subjects, prefix+"."+strings.ToLower(fam)+"."+strings.ToLower(status)+"."+ag)
	}
	if len(subjects) == 0 {
		subjects = append(subjects, prefix+".*.*."+ag)
	}
	slices.Sort(subjects)
	return slices.Compact(subjects), nil
}

// widen returns one subject filter covering all of subjects (which all come
// from Filter.Subjects, so have the same number of tokens): tokens that
// differ become "*". It serves servers older than NATS 2.10, which take only
// one filter subject per consumer; the exact filter is then applied on our
// side.
func widen(subjects []string) string {
	if len(subjects) == 1 {
		return subjects[0]
	}
	out := strings.Split(subjects[0], ".")
	for _, s := range subjects[1:] {
		toks := strings.Split(s, ".")
		for i := range out {
			if i >= len(toks) || toks[i] != out[i] {
				out[i] = "*"
			}
		}
	}
	return strings.Join(out, ".")
}

// subjectMatches reports whether subject matches the filter pattern, with
// NATS wildcards ("*" one token, ">" the rest).
func subjectMatches(pattern, subject string) bool {
	for {
		p, prest, pmore := strings.Cut(pattern, ".")
		if p == ">" {
			return subject != ""
		}
		s, srest, smore := strings.Cut(subject, ".")
		if p != "*" && p != s || s == "" {
			return false
		}
		if !pmore || !smore {
			return pmore == smore
		}
		pattern, subject = prest, srest
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// selection is a Filter compiled for one log: its exact subjects (the
// filter of a catch-up's consumer, and what the tokens' filter hash is
// taken of) and the same subjects as patterns the tail matches entries
// against without touching NATS.
type selection struct {
	subjects []string
	hash     uint32
	patterns []pattern
}

// pattern is one filter subject's tokens after the prefix; "*" matches any.
type pattern struct{ family, status, accountGroup string }

// indexKey is where the tail looks subscribers up: an event's account group
// and family, or "*" for subscribers that take any.
type indexKey struct{ accountGroup, family string }

func (f Filter) selection(prefix string) (*selection, error) {
	subjects, err := f.Subjects(prefix)
	if err != nil {
		return nil, err
	}
	s := &selection{subjects: subjects, hash: filterHash(subjects)}
	for _, subj := range subjects {
		toks := strings.Split(strings.TrimPrefix(subj, prefix+"."), ".")
		s.patterns = append(s.patterns, pattern{family: toks[0], status: toks[1], accountGroup: toks[2]})
	}
	return s, nil
}

// matches reports whether the entry's subject is one the filter selects.
func (s *selection) matches(e *entry) bool {
	for _, p := range s.patterns {
		if (p.family == "*" || p.family == e.family) && (p.status == "*" || p.status == e.status) &&
			(p.accountGroup == "*" || p.accountGroup == e.accountGroup) {
			return true
		}
	}
	return false
}

// takesAll reports whether the selection takes every entry found under k,
// whatever its status.
func (s *selection) takesAll(k indexKey) bool {
	return slices.Contains(s.patterns, pattern{family: k.family, status: "*", accountGroup: k.accountGroup})
}

// indexKeys are the distinct keys the subscriber is found under. An event
// has one family and one account group, so it finds a subscriber under at
// most one of them.
func (s *selection) indexKeys() []indexKey {
	var keys []indexKey
	for _, p := range s.patterns {
		k := indexKey{accountGroup: p.accountGroup, family: p.family}
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}
