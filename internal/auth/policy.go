package auth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxPolicyBytes caps a policy file.
const MaxPolicyBytes = 1 << 20

// Limits bound one caller. The zero Limits is no limit at all (only an
// allow-all policy has it).
type Limits struct {
	// CallsPerSecond is the sustained rate of calls, unary calls and stream
	// openings alike (a token bucket), and Burst how many may come at once.
	CallsPerSecond float64
	Burst          int
	// Streams is how many streams may be open at once.
	Streams int
}

// DefaultLimits apply to a caller whose policy entry and the policy's
// defaults leave a limit out.
var DefaultLimits = Limits{CallsPerSecond: 50, Burst: 100, Streams: 20}

func (l Limits) unlimited() bool { return l == Limits{} }

// Grant is what the policy grants one identity.
type Grant struct {
	identity string
	all      bool            // "*"
	services map[string]bool // "pkg.Service/*"
	methods  map[string]bool // "pkg.Service/Method"
	groups   map[string]bool // nil: any account group
	limits   Limits
}

// Identity is the identity granted.
func (g *Grant) Identity() string { return g.identity }

// AllowsMethod reports whether the grant covers fullMethod
// ("/pkg.Service/Method").
func (g *Grant) AllowsMethod(fullMethod string) bool {
	if g.all {
		return true
	}
	name := methodName(fullMethod)
	if g.methods[name] {
		return true
	}
	svc, _, _ := strings.Cut(name, "/")
	return g.services[svc]
}

// Restricted reports whether the grant names its account groups, rather
// than allowing any.
func (g *Grant) Restricted() bool { return g.groups != nil }

// AllowsAccountGroup reports whether the grant covers the account group id.
func (g *Grant) AllowsAccountGroup(id string) bool {
	return g.groups == nil || g.groups[strings.ToLower(id)]
}

// AccountGroups lists the account groups granted, sorted; nil means any.
func (g *Grant) AccountGroups() []string {
	if g.groups == nil {
		return nil
	}
	out := make([]string, 0, len(g.groups))
	for id := range g.groups {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Limits are the caller's limits.
func (g *Grant) Limits() Limits { return g.limits }

// Policy is who may call what. It is immutable.
type Policy struct {
	callers  map[string]*Grant
	allowAll bool
}

// allowAllGrant is every caller's grant under AllowAll.
var allowAllGrant = &Grant{all: true}

// AllowAll is the policy of an unauthenticated gateway without a policy
// file: every method, any account group, no limits.
func AllowAll() *Policy { return &Policy{allowAll: true} }

// Grant returns what the policy grants identity; false for an identity it
// does not know.
func (p *Policy) Grant(identity string) (*Grant, bool) {
	if p.allowAll {
		return allowAllGrant, true
	}
	g, ok := p.callers[identity]
	return g, ok
}

// Identities lists the identities the policy knows, sorted.
func (p *Policy) Identities() []string {
	out := make([]string, 0, len(p.callers))
	for id := range p.callers {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// PolicyError is a policy that does not parse or make sense, with the line
// and entry it is about.
type PolicyError struct {
	Line int    // 1-based; 0 when the error is about the whole file
	Path string // e.g. "callers[1].account_groups[0]"
	Msg  string
}

func (e *PolicyError) Error() string {
	var b strings.Builder
	b.WriteString("policy")
	if e.Line > 0 {
		fmt.Fprintf(&b, " line %d", e.Line)
	}
	if e.Path != "" {
		b.WriteString(": " + e.Path)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

func errAt(n *yaml.Node, path, format string, args ...any) error {
	return &PolicyError{Line: n.Line, Path: path, Msg: fmt.Sprintf(format, args...)}
}

// ParsePolicy parses a YAML policy:
//
//	defaults:                      # optional
//	  limits: {calls_per_second: 50, burst: 100, streams: 20}
//	callers:
//	  - identity: "spiffe://bank.example/ns/payouts/sa/payout-worker"
//	    methods: ["upvest.gateway.v1.PaymentsService/*", "upvest.gateway.v1.CashBalanceService/GetCashBalance"]
//	    account_groups: ["2596db3b-0d03-4651-9eda-970910479dfb"]   # optional; absent = any
//	    limits: {calls_per_second: 50, burst: 100, streams: 20}      # optional
//	  - identity: "balance-dashboard"
//	    methods: ["upvest.gateway.v1.CashBalanceService/*"]
//
// An identity is a URI SAN, a certificate common name or a JWT claim value.
// Method patterns are "pkg.Service/Method", "pkg.Service/*" or "*", and
// must name services and methods in knownMethods (full method names, see
// MethodsOf). A limit left out comes from defaults, else DefaultLimits;
// limits are positive (calls_per_second may be fractional). Parsing is
// strict: unknown keys, repeated keys or identities, values of the wrong
// type, account groups that are not UUIDs, an empty account_groups list,
// anchors and aliases are errors (a *PolicyError naming the line and entry).
func ParsePolicy(data []byte, knownMethods []string) (*Policy, error) {
	known, err := newKnownMethods(knownMethods)
	if err != nil {
		return nil, err
	}
	return parsePolicy(data, known)
}

func parsePolicy(data []byte, known knownMethods) (*Policy, error) {
	if len(data) > MaxPolicyBytes {
		return nil, &PolicyError{Msg: fmt.Sprintf("larger than %d bytes", MaxPolicyBytes)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &PolicyError{Msg: "the file is empty"}
		}
		return nil, &PolicyError{Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, &PolicyError{Line: more.Line, Msg: "more than one YAML document"}
	}
	if err := noAliases(&doc); err != nil {
		return nil, err
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	top, err := mapping(root, "", "defaults", "callers")
	if err != nil {
		return nil, err
	}
	defaults := DefaultLimits
	if d, ok := top["defaults"]; ok {
		fields, err := mapping(d, "defaults", "limits")
		if err != nil {
			return nil, err
		}
		if l, ok := fields["limits"]; ok {
			if defaults, err = parseLimits(l, "defaults.limits", DefaultLimits); err != nil {
				return nil, err
			}
		}
	}
	callers, ok := top["callers"]
	if !ok {
		return nil, errAt(root, "", "no callers list: nothing would be allowed")
	}
	if callers.Kind != yaml.SequenceNode {
		return nil, errAt(callers, "callers", "must be a list of callers")
	}
	p := &Policy{callers: map[string]*Grant{}}
	lines := map[string]int{}
	for i, c := range callers.Content {
		path := fmt.Sprintf("callers[%d]", i)
		g, err := parseCaller(c, path, known, defaults)
		if err != nil {
			return nil, err
		}
		if line, dup := lines[g.identity]; dup {
			return nil, errAt(c, path, "identity %q is already granted at line %d: one entry per identity", g.identity, line)
		}
		lines[g.identity] = c.Line
		p.callers[g.identity] = g
	}
	return p, nil
}

func parseCaller(n *yaml.Node, path string, known knownMethods, defaults Limits) (*Grant, error) {
	fields, err := mapping(n, path, "identity", "methods", "account_groups", "limits")
	if err != nil {
		return nil, err
	}
	idNode, ok := fields["identity"]
	if !ok {
		return nil, errAt(n, path, "no identity")
	}
	id, err := str(idNode, path+".identity")
	if err != nil {
		return nil, err
	}
	if !usableIdentity(id) {
		return nil, errAt(idNode, path+".identity", "must be printable text of 1 to %d bytes", maxIdentityBytes)
	}
	g := &Grant{identity: id, services: map[string]bool{}, methods: map[string]bool{}}

	mNode, ok := fields["methods"]
	if !ok {
		return nil, errAt(n, path, "no methods: a caller without methods may call nothing")
	}
	patterns, err := strList(mNode, path+".methods")
	if err != nil {
		return nil, err
	}
	for j, pat := range patterns {
		if err := g.addMethodPattern(pat, known); err != nil {
			return nil, errAt(mNode.Content[j], fmt.Sprintf("%s.methods[%d]", path, j), "%v", err)
		}
	}

	if aNode, ok := fields["account_groups"]; ok {
		ids, err := strList(aNode, path+".account_groups")
		if err != nil {
			return nil, err
		}
		g.groups = map[string]bool{}
		for j, ag := range ids {
			if !isUUID(ag) {
				return nil, errAt(aNode.Content[j], fmt.Sprintf("%s.account_groups[%d]", path, j), "%q is not a UUID", ag)
			}
			g.groups[strings.ToLower(ag)] = true
		}
	}

	g.limits = defaults
	if lNode, ok := fields["limits"]; ok {
		if g.limits, err = parseLimits(lNode, path+".limits", defaults); err != nil {
			return nil, err
		}
	}
	return g, nil
}

func (g *Grant) addMethodPattern(pat string, known knownMethods) error {
	if pat == "*" {
		g.all = true
		return nil
	}
	if strings.HasPrefix(pat, "/") {
		return fmt.Errorf("%q: write method patterns without the leading slash", pat)
	}
	svc, method, ok := strings.Cut(pat, "/")
	if !ok || svc == "" || method == "" || strings.Contains(method, "/") {
		return fmt.Errorf("%q is not a method pattern (pkg.Service/Method, pkg.Service/* or *)", pat)
	}
	if !known.services[svc] {
		return fmt.Errorf("%q: no service %s", pat, svc)
	}
	if method == "*" {
		g.services[svc] = true
		return nil
	}
	if !known.methods[pat] {
		return fmt.Errorf("%q: service %s has no method %s", pat, svc, method)
	}
	g.methods[pat] = true
	return nil
}

// parseLimits reads a limits mapping; what it leaves out comes from base.
func parseLimits(n *yaml.Node, path string, base Limits) (Limits, error) {
	fields, err := mapping(n, path, "calls_per_second", "burst", "streams")
	if err != nil {
		return Limits{}, err
	}
	l := base
	if v, ok := fields["calls_per_second"]; ok {
		if v.Kind != yaml.ScalarNode || (v.Tag != "!!int" && v.Tag != "!!float") {
			return Limits{}, errAt(v, path+".calls_per_second", "must be a number")
		}
		var f float64
		if err := v.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 {
			return Limits{}, errAt(v, path+".calls_per_second", "must be a positive number (leave it out for the default)")
		}
		l.CallsPerSecond = f
	}
	for _, k := range []struct {
		key string
		dst *int
	}{{"burst", &l.Burst}, {"streams", &l.Streams}} {
		v, ok := fields[k.key]
		if !ok {
			continue
		}
		var n int
		if v.Kind != yaml.ScalarNode || v.Tag != "!!int" || v.Decode(&n) != nil {
			return Limits{}, errAt(v, path+"."+k.key, "must be a whole number")
		}
		if n <= 0 {
			return Limits{}, errAt(v, path+"."+k.key, "must be positive (leave it out for the default)")
		}
		*k.dst = n
	}
	return l, nil
}

// mapping returns the values of a mapping node by key, refusing keys not in
// allowed and repeated keys.
func mapping(n *yaml.Node, path string, allowed ...string) (map[string]*yaml.Node, error) {
	where := path
	if where == "" {
		where = "the top level"
	}
	if n.Kind != yaml.MappingNode {
		return nil, errAt(n, path, "%s must be a mapping", where)
	}
	out := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := k.Value
		if k.Kind != yaml.ScalarNode || k.Tag != "!!str" || !slices.Contains(allowed, key) {
			return nil, errAt(k, path, "unknown key %q (known: %s)", key, strings.Join(allowed, ", "))
		}
		if _, dup := out[key]; dup {
			return nil, errAt(k, path, "key %q appears twice", key)
		}
		if v.Tag == "!!null" {
			return nil, errAt(v, joinPath(path, key), "has no value")
		}
		out[key] = v
	}
	return out, nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func str(n *yaml.Node, path string) (string, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		return "", errAt(n, path, "must be a string (quote it)")
	}
	return n.Value, nil
}

// strList reads a non-empty list of strings.
func strList(n *yaml.Node, path string) ([]string, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, errAt(n, path, "must be a list")
	}
	if len(n.Content) == 0 {
		return nil, errAt(n, path, "is empty: list at least one, or leave the key out where that is allowed")
	}
	out := make([]string, len(n.Content))
	for i, item := range n.Content {
		s, err := str(item, fmt.Sprintf("%s[%d]", path, i))
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// noAliases refuses anchors and aliases: a policy is read by people, and
// aliases are how a small YAML file expands into a huge one.
func noAliases(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return errAt(n, "", "anchors and aliases are not supported")
	}
	for _, c := range n.Content {
		if err := noAliases(c); err != nil {
			return err
		}
	}
	return nil
}

// isUUID accepts the canonical 8-4-4-4-12 hexadecimal form only.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
