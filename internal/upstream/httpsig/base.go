package httpsig

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// MaxComponents bounds the covered components a signature may list. Upvest
// covers about ten; the bound keeps hostile input from making base
// construction expensive.
const MaxComponents = 64

// Signature parameter names this package gives meaning to.
const (
	paramKeyID   = "keyid"
	paramCreated = "created"
	paramExpires = "expires"
	paramNonce   = "nonce"
	paramAlg     = "alg"
)

// defaultParamOrder is the order of README's signature-input example; Params
// built in code serialize in it.
var defaultParamOrder = [...]string{paramKeyID, paramCreated, paramNonce, paramExpires, paramAlg}

// Params is one parsed signature-input member.
//
// Zero values mean "absent": a Params built in code omits KeyID, Nonce and Alg
// when empty and Created and Expires when zero. A Params returned by
// ParseSignatureInput additionally remembers the order in which the peer sent
// its parameters, and any parameters this package does not interpret, so that
// String reproduces the exact @signature-params line the peer signed.
type Params struct {
	Label      string   // dictionary key, e.g. "sig1"
	Components []string // covered component names, without quotes
	KeyID      string
	Created    int64 // unix seconds
	Expires    int64 // unix seconds
	Nonce      string
	Alg        string

	order []paramEntry // as received; nil for Params built in code
}

// paramEntry records one received parameter. raw is the canonical
// serialization (";name=value") of a parameter this package does not
// interpret, and unused for known ones, whose values come from the fields.
type paramEntry struct {
	name string
	raw  string
}

// ParseSignatureInput parses a signature-input field value: an RFC 8941
// dictionary whose members are inner lists of strings with parameters. It
// rejects duplicate labels and parameters, components with parameters, and
// known parameters of the wrong type. It never panics, whatever the input.
func ParseSignatureInput(header string) ([]Params, error) {
	members, err := parseDictionary(header)
	if err != nil {
		return nil, fmt.Errorf("httpsig: signature-input: %w", err)
	}
	if len(members) == 0 {
		return nil, errors.New("httpsig: signature-input: empty")
	}
	out := make([]Params, 0, len(members))
	for _, m := range members {
		p, err := paramsFromMember(m)
		if err != nil {
			return nil, fmt.Errorf("httpsig: signature-input member %s: %w", quoteShort(m.key), err)
		}
		out = append(out, p)
	}
	return out, nil
}

func paramsFromMember(m sfMember) (Params, error) {
	if !m.innerList {
		return Params{}, errors.New("not an inner list")
	}
	p := Params{Label: m.key, Components: make([]string, 0, len(m.list)), order: make([]paramEntry, 0, len(m.params))}
	for _, it := range m.list {
		if it.value.kind != sfString {
			return Params{}, errors.New("component identifier is not a string")
		}
		if len(it.params) > 0 {
			// Component parameters (sf, key, req, name, bs) change the
			// value being signed; we implement none, so refuse rather
			// than sign or check the wrong thing.
			return Params{}, fmt.Errorf("component %s has parameters, which are not supported", quoteShort(it.value.str))
		}
		p.Components = append(p.Components, it.value.str)
	}
	for _, prm := range m.params {
		var err error
		switch prm.key {
		case paramKeyID:
			p.KeyID, err = wantString(prm)
		case paramNonce:
			p.Nonce, err = wantString(prm)
		case paramAlg:
			p.Alg, err = wantString(prm)
		case paramCreated:
			p.Created, err = wantInteger(prm)
		case paramExpires:
			p.Expires, err = wantInteger(prm)
		default:
			var b strings.Builder
			writeParam(&b, prm.key, prm.value)
			p.order = append(p.order, paramEntry{name: prm.key, raw: b.String()})
			continue
		}
		if err != nil {
			return Params{}, err
		}
		p.order = append(p.order, paramEntry{name: prm.key})
	}
	return p, nil
}

func wantString(prm sfParam) (string, error) {
	if prm.value.kind != sfString {
		return "", fmt.Errorf("parameter %s is not a string", prm.key)
	}
	return prm.value.str, nil
}

func wantInteger(prm sfParam) (int64, error) {
	if prm.value.kind != sfInteger {
		return 0, fmt.Errorf("parameter %s is not an integer", prm.key)
	}
	return prm.value.integer, nil
}

// String returns the inner list with parameters exactly as it goes after
// "sig1=" in signature-input and on the "@signature-params" line, e.g.
// ("@method" "@path");keyid="k";created=1;nonce="n";expires=61.
func (p Params) String() string {
	var b strings.Builder
	b.Grow(64 + 20*len(p.Components))
	b.WriteByte('(')
	for i, c := range p.Components {
		if i > 0 {
			b.WriteByte(' ')
		}
		writeSFString(&b, c)
	}
	b.WriteByte(')')
	var written [len(defaultParamOrder)]bool
	for _, e := range p.order {
		if i := knownParamIndex(e.name); i >= 0 {
			p.writeKnown(&b, e.name, true)
			written[i] = true
		} else {
			b.WriteString(e.raw)
		}
	}
	for i, name := range defaultParamOrder {
		if !written[i] {
			p.writeKnown(&b, name, false)
		}
	}
	return b.String()
}

func knownParamIndex(name string) int {
	for i, n := range defaultParamOrder {
		if n == name {
			return i
		}
	}
	return -1
}

// writeKnown writes a known parameter from the fields. A parameter that was
// received is written even when zero, so the line matches what was signed.
func (p Params) writeKnown(b *strings.Builder, name string, received bool) {
	switch name {
	case paramKeyID, paramNonce, paramAlg:
		v := p.KeyID
		switch name {
		case paramNonce:
			v = p.Nonce
		case paramAlg:
			v = p.Alg
		}
		if v != "" || received {
			b.WriteByte(';')
			b.WriteString(name)
			b.WriteByte('=')
			writeSFString(b, v)
		}
	case paramCreated, paramExpires:
		v := p.Created
		if name == paramExpires {
			v = p.Expires
		}
		if v != 0 || received {
			b.WriteByte(';')
			b.WriteString(name)
			b.WriteByte('=')
			b.WriteString(strconv.FormatInt(v, 10))
		}
	}
}

// SignatureBase builds the string that is signed: one line per covered
// component, then the @signature-params line, joined by "\n" with no
// trailing newline. Version 15 quotes component names ("@method": POST);
// version 6 does not (@method: POST).
//
// Derived components: "@method" (upper case; empty means GET), "@path" (the
// escaped path as net/http sends it, "/" if empty), "@query" (raw query with
// its leading "?"; a lone "?" when there is none, per draft 15),
// "@request-target" (path and query) and "@authority" (lower-cased host).
// Any other name is a lower-case header field: its values, trimmed, joined
// with ", ".
//
// It refuses anything that could make the base ambiguous: duplicate or
// non-lower-case names, control characters in values, and parameters that
// are not printable ASCII. Errors wrap ErrMissingComponent,
// ErrUnsupportedComponent or ErrInvalidComponent and name the component but
// never include its value.
func SignatureBase(req *http.Request, p Params, version int) (string, error) {
	if req == nil || req.URL == nil {
		return "", errors.New("httpsig: nil request or URL")
	}
	if version != Version15 && version != Version6 {
		return "", fmt.Errorf("httpsig: unsupported signature version %d", version)
	}
	for _, s := range [...]string{p.KeyID, p.Nonce, p.Alg} {
		if !isSFStringSafe(s) {
			return "", errors.New("httpsig: signature parameter is not printable ASCII")
		}
	}
	quote := version == Version15
	var b strings.Builder
	b.Grow(256)
	if len(p.Components) > MaxComponents {
		return "", fmt.Errorf("httpsig: more than %d covered components: %w", MaxComponents, ErrInvalidComponent)
	}
	for i, name := range p.Components {
		if slices.Contains(p.Components[:i], name) {
			return "", fmt.Errorf("httpsig: component %s covered twice: %w", quoteShort(name), ErrInvalidComponent)
		}
		value, err := componentValue(req, name)
		if err != nil {
			return "", err
		}
		writeBaseName(&b, name, quote)
		b.WriteString(value)
		b.WriteByte('\n')
	}
	writeBaseName(&b, "@signature-params", quote)
	b.WriteString(p.String())
	return b.String(), nil
}

func writeBaseName(b *strings.Builder, name string, quote bool) {
	if quote {
		b.WriteByte('"')
		b.WriteString(name)
		b.WriteString(`": `)
	} else {
		b.WriteString(name)
		b.WriteString(": ")
	}
}

// componentValue returns the value of one covered component. The parser
// accepts any string as a name; names are validated here.
func componentValue(req *http.Request, name string) (string, error) {
	if strings.HasPrefix(name, "@") {
		return derivedValue(req, name)
	}
	if !isFieldName(name) {
		return "", fmt.Errorf("httpsig: component %s is not a lower-case field name: %w", quoteShort(name), ErrInvalidComponent)
	}
	values := headerValues(req.Header, name)
	if len(values) == 0 && name == "host" && req.Host != "" {
		// net/http moves Host out of the header map on both sides.
		values = []string{req.Host}
	}
	if len(values) == 0 {
		return "", fmt.Errorf("httpsig: component %s: %w", quoteShort(name), ErrMissingComponent)
	}
	if len(values) == 1 {
		if !validFieldValue(values[0]) {
			return "", fmt.Errorf("httpsig: component %s has a control character: %w", quoteShort(name), ErrInvalidComponent)
		}
		return trimOWS(values[0]), nil
	}
	var b strings.Builder
	for i, v := range values {
		if !validFieldValue(v) {
			return "", fmt.Errorf("httpsig: component %s has a control character: %w", quoteShort(name), ErrInvalidComponent)
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(trimOWS(v))
	}
	return b.String(), nil
}

func derivedValue(req *http.Request, name string) (string, error) {
	switch name {
	case "@method":
		m := req.Method
		if m == "" {
			m = http.MethodGet // what net/http sends for an empty Method
		}
		if !isToken(m) {
			return "", fmt.Errorf("httpsig: component %s: method is not a token: %w", quoteShort(name), ErrInvalidComponent)
		}
		return strings.ToUpper(m), nil
	case "@path":
		return requestPath(req)
	case "@query":
		// Draft 15 §2.2.7: an absent query is the lone "?".
		q := "?" + req.URL.RawQuery
		if !validURIPart(q) {
			return "", fmt.Errorf("httpsig: component %s has a control character: %w", quoteShort(name), ErrInvalidComponent)
		}
		return q, nil
	case "@request-target":
		path, err := requestPath(req)
		if err != nil {
			return "", err
		}
		if req.URL.RawQuery != "" || req.URL.ForceQuery {
			path += "?" + req.URL.RawQuery
		}
		if !validURIPart(path) {
			return "", fmt.Errorf("httpsig: component %s has a control character: %w", quoteShort(name), ErrInvalidComponent)
		}
		return path, nil
	case "@authority":
		host := req.Host
		if host == "" {
			host = req.URL.Host
		}
		if host == "" {
			return "", fmt.Errorf("httpsig: component %s: %w", quoteShort(name), ErrMissingComponent)
		}
		if !validURIPart(host) {
			return "", fmt.Errorf("httpsig: component %s has a control character: %w", quoteShort(name), ErrInvalidComponent)
		}
		return strings.ToLower(host), nil
	}
	return "", fmt.Errorf("httpsig: component %s: %w", quoteShort(name), ErrUnsupportedComponent)
}

// requestPath is the path as net/http puts it on the request line, so the
// client and the server compute the same value.
func requestPath(req *http.Request) (string, error) {
	if req.URL.Opaque != "" {
		return "", fmt.Errorf("httpsig: component \"@path\": opaque URLs are not supported: %w", ErrInvalidComponent)
	}
	p := req.URL.EscapedPath()
	if p == "" {
		p = "/"
	}
	return p, nil
}

// isFieldName reports whether name is a lower-case RFC 9110 token. Upper case
// is refused because draft 15 requires lower-cased identifiers and two
// spellings of one header must not yield two bases.
func isFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'A' && c <= 'Z' || !isTChar(c) {
			return false
		}
	}
	return true
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTChar(s[i]) {
			return false
		}
	}
	return true
}

// validFieldValue reports whether v is a legal HTTP field value: no control
// characters other than horizontal tab. A CR or LF would let a value forge
// extra lines in the signature base.
func validFieldValue(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// validURIPart reports whether s has no control characters or spaces, which
// net/http would refuse to put on the request line anyway.
func validURIPart(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// canonicalNames maps the field names Upvest signatures cover to their
// canonical header keys, sparing a canonicalization (and an allocation) per
// component on the signing hot path.
var canonicalNames = map[string]string{
	"accept":           "Accept",
	"authorization":    "Authorization",
	"content-type":     "Content-Type",
	"content-length":   "Content-Length",
	"content-digest":   "Content-Digest",
	"digest":           "Digest",
	"idempotency-key":  "Idempotency-Key",
	"upvest-client-id": "Upvest-Client-Id",
}

// headerValues is h.Values(name) for a lower-case name.
func headerValues(h http.Header, name string) []string {
	if c, ok := canonicalNames[name]; ok {
		return h[c]
	}
	return h.Values(name)
}

func trimOWS(s string) string { return strings.Trim(s, " \t") }
