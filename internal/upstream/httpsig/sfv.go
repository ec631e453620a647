package httpsig

// A parser and serializer for the subset of RFC 8941 structured field values
// that signature-input, signature and content-digest use: dictionaries whose
// members are items or inner lists, with parameters. It is hand-written rather
// than regexp-based so that every accepted input has exactly one meaning and
// a canonical serialization, which the signature base depends on. Input is
// attacker-controlled (webhooks), so the parser is linear, allocation-bounded
// by the input length, and never panics.

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

type sfKind uint8

const (
	sfInteger sfKind = iota + 1
	sfDecimal
	sfString
	sfToken
	sfBytes
	sfBoolean
)

// sfBareItem is one RFC 8941 bare item. Only the field for its kind is set.
type sfBareItem struct {
	kind    sfKind
	integer int64
	str     string // string, token, or canonical decimal text
	bytes   []byte
	boolean bool
}

type sfParam struct {
	key   string
	value sfBareItem
}

type sfItem struct {
	value  sfBareItem
	params []sfParam
}

// sfMember is a dictionary member: either an item or an inner list.
type sfMember struct {
	key       string
	innerList bool
	item      sfItem   // when !innerList
	list      []sfItem // when innerList
	params    []sfParam
}

// errSF is wrapped by every parse error so callers can tell syntax from
// semantics.
var errSF = errors.New("invalid structured field")

type sfParser struct {
	s string
	i int
}

func (p *sfParser) fail(what string) error {
	return fmt.Errorf("%w: %s at offset %d", errSF, what, p.i)
}

func (p *sfParser) eof() bool { return p.i >= len(p.s) }

func (p *sfParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *sfParser) skipSP() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *sfParser) skipOWS() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// parseDictionary parses a dictionary field value (RFC 8941 §4.2.2). Unlike
// the RFC, which lets a later duplicate key win, it rejects duplicate keys:
// two signatures under one label would let an intermediary choose which one
// we check.
func parseDictionary(s string) ([]sfMember, error) {
	p := &sfParser{s: s}
	p.skipSP()
	var members []sfMember
	seen := make(map[string]struct{})
	for !p.eof() {
		key, err := p.parseKey()
		if err != nil {
			return nil, err
		}
		if _, dup := seen[key]; dup {
			return nil, p.fail("duplicate dictionary key " + quoteShort(key))
		}
		seen[key] = struct{}{}
		m := sfMember{key: key}
		if p.peek() == '=' {
			p.i++
			if p.peek() == '(' {
				m.innerList = true
				if m.list, m.params, err = p.parseInnerList(); err != nil {
					return nil, err
				}
			} else if m.item, err = p.parseItem(); err != nil {
				return nil, err
			}
		} else {
			m.item.value = sfBareItem{kind: sfBoolean, boolean: true}
			if m.item.params, err = p.parseParams(); err != nil {
				return nil, err
			}
		}
		members = append(members, m)
		p.skipOWS()
		if p.eof() {
			return members, nil
		}
		if p.peek() != ',' {
			return nil, p.fail("expected ','")
		}
		p.i++
		p.skipOWS()
		if p.eof() {
			return nil, p.fail("trailing ','")
		}
	}
	return members, nil
}

func (p *sfParser) parseInnerList() ([]sfItem, []sfParam, error) {
	if p.peek() != '(' {
		return nil, nil, p.fail("expected '('")
	}
	p.i++
	var items []sfItem
	for !p.eof() {
		p.skipSP()
		if p.peek() == ')' {
			p.i++
			params, err := p.parseParams()
			return items, params, err
		}
		it, err := p.parseItem()
		if err != nil {
			return nil, nil, err
		}
		items = append(items, it)
		if c := p.peek(); c != ' ' && c != ')' {
			return nil, nil, p.fail("expected ' ' or ')' in inner list")
		}
	}
	return nil, nil, p.fail("unterminated inner list")
}

func (p *sfParser) parseItem() (sfItem, error) {
	v, err := p.parseBareItem()
	if err != nil {
		return sfItem{}, err
	}
	params, err := p.parseParams()
	return sfItem{value: v, params: params}, err
}

// parseParams rejects duplicate parameter keys for the same reason
// parseDictionary rejects duplicate members.
func (p *sfParser) parseParams() ([]sfParam, error) {
	var (
		params []sfParam
		seen   map[string]struct{} // only built for long lists, keeping the common case allocation-free
	)
	for p.peek() == ';' {
		p.i++
		p.skipSP()
		key, err := p.parseKey()
		if err != nil {
			return nil, err
		}
		if containsKey(params, seen, key) {
			return nil, p.fail("duplicate parameter " + quoteShort(key))
		}
		if len(params) == 8 {
			seen = make(map[string]struct{}, 16)
			for _, q := range params {
				seen[q.key] = struct{}{}
			}
		}
		if seen != nil {
			seen[key] = struct{}{}
		}
		v := sfBareItem{kind: sfBoolean, boolean: true}
		if p.peek() == '=' {
			p.i++
			if v, err = p.parseBareItem(); err != nil {
				return nil, err
			}
		}
		params = append(params, sfParam{key: key, value: v})
	}
	return params, nil
}

// containsKey looks key up in seen when it exists, else scans params, so
// duplicate detection stays linear overall on hostile input.
func containsKey(params []sfParam, seen map[string]struct{}, key string) bool {
	if seen != nil {
		_, ok := seen[key]
		return ok
	}
	for _, q := range params {
		if q.key == key {
			return true
		}
	}
	return false
}

func (p *sfParser) parseKey() (string, error) {
	start := p.i
	if c := p.peek(); !(isLCAlpha(c) || c == '*') {
		return "", p.fail("expected key")
	}
	p.i++
	for !p.eof() {
		c := p.s[p.i]
		if !(isLCAlpha(c) || isDigit(c) || c == '_' || c == '-' || c == '.' || c == '*') {
			break
		}
		p.i++
	}
	return p.s[start:p.i], nil
}

func (p *sfParser) parseBareItem() (sfBareItem, error) {
	c := p.peek()
	switch {
	case c == '-' || isDigit(c):
		return p.parseNumber()
	case c == '"':
		return p.parseString()
	case c == ':':
		return p.parseByteSequence()
	case c == '?':
		return p.parseBoolean()
	case isAlpha(c) || c == '*':
		return p.parseToken()
	}
	return sfBareItem{}, p.fail("expected bare item")
}

func (p *sfParser) parseNumber() (sfBareItem, error) {
	neg := false
	if p.peek() == '-' {
		neg = true
		p.i++
	}
	if !isDigit(p.peek()) {
		return sfBareItem{}, p.fail("expected digit")
	}
	start := p.i
	dot := -1
	for !p.eof() {
		c := p.s[p.i]
		if isDigit(c) {
			p.i++
		} else if c == '.' && dot < 0 {
			if p.i-start > 12 {
				return sfBareItem{}, p.fail("decimal integer part too long")
			}
			dot = p.i
			p.i++
		} else {
			break
		}
		if dot < 0 && p.i-start > 15 {
			return sfBareItem{}, p.fail("integer too long")
		}
		if dot >= 0 && p.i-start > 16 {
			return sfBareItem{}, p.fail("decimal too long")
		}
	}
	if dot < 0 {
		n, err := strconv.ParseInt(p.s[start:p.i], 10, 64)
		if err != nil { // unreachable: at most 15 digits
			return sfBareItem{}, p.fail("bad integer")
		}
		if neg {
			n = -n
		}
		return sfBareItem{kind: sfInteger, integer: n}, nil
	}
	intPart, frac := p.s[start:dot], p.s[dot+1:p.i]
	if len(frac) == 0 || len(frac) > 3 {
		return sfBareItem{}, p.fail("bad decimal fraction")
	}
	// Canonical form (RFC 8941 §4.1.5): no leading zeros, no trailing
	// fractional zeros beyond the first digit.
	intPart = strings.TrimLeft(intPart, "0")
	if intPart == "" {
		intPart = "0"
	}
	frac = strings.TrimRight(frac, "0")
	if frac == "" {
		frac = "0"
	}
	text := intPart + "." + frac
	if neg {
		text = "-" + text
	}
	return sfBareItem{kind: sfDecimal, str: text}, nil
}

func (p *sfParser) parseString() (sfBareItem, error) {
	p.i++ // opening quote
	var b strings.Builder
	for !p.eof() {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '\\':
			if p.eof() {
				return sfBareItem{}, p.fail("unterminated escape")
			}
			c = p.s[p.i]
			if c != '"' && c != '\\' {
				return sfBareItem{}, p.fail("bad escape")
			}
			p.i++
			b.WriteByte(c)
		case c == '"':
			return sfBareItem{kind: sfString, str: b.String()}, nil
		case c < 0x20 || c > 0x7e:
			return sfBareItem{}, p.fail("non-printable character in string")
		default:
			b.WriteByte(c)
		}
	}
	return sfBareItem{}, p.fail("unterminated string")
}

func (p *sfParser) parseToken() (sfBareItem, error) {
	start := p.i
	p.i++
	for !p.eof() {
		c := p.s[p.i]
		if !(isTChar(c) || c == ':' || c == '/') {
			break
		}
		p.i++
	}
	return sfBareItem{kind: sfToken, str: p.s[start:p.i]}, nil
}

func (p *sfParser) parseByteSequence() (sfBareItem, error) {
	p.i++ // opening colon
	end := strings.IndexByte(p.s[p.i:], ':')
	if end < 0 {
		return sfBareItem{}, p.fail("unterminated byte sequence")
	}
	text := p.s[p.i : p.i+end]
	for i := 0; i < len(text); i++ {
		c := text[i]
		if !(isAlpha(c) || isDigit(c) || c == '+' || c == '/' || c == '=') {
			return sfBareItem{}, p.fail("invalid base64 character")
		}
	}
	// RFC 8941 asks parsers to tolerate missing padding.
	enc := base64.StdEncoding
	if !strings.HasSuffix(text, "=") && len(text)%4 != 0 {
		enc = base64.RawStdEncoding
	}
	data, err := enc.DecodeString(text)
	if err != nil {
		return sfBareItem{}, p.fail("invalid base64")
	}
	p.i += end + 1
	return sfBareItem{kind: sfBytes, bytes: data}, nil
}

func (p *sfParser) parseBoolean() (sfBareItem, error) {
	p.i++ // '?'
	switch p.peek() {
	case '1':
		p.i++
		return sfBareItem{kind: sfBoolean, boolean: true}, nil
	case '0':
		p.i++
		return sfBareItem{kind: sfBoolean, boolean: false}, nil
	}
	return sfBareItem{}, p.fail("invalid boolean")
}

// writeBareItem writes the canonical serialization of v.
func writeBareItem(b *strings.Builder, v sfBareItem) {
	switch v.kind {
	case sfInteger:
		b.WriteString(strconv.FormatInt(v.integer, 10))
	case sfDecimal, sfToken:
		b.WriteString(v.str)
	case sfString:
		writeSFString(b, v.str)
	case sfBytes:
		b.WriteByte(':')
		b.WriteString(base64.StdEncoding.EncodeToString(v.bytes))
		b.WriteByte(':')
	case sfBoolean:
		if v.boolean {
			b.WriteString("?1")
		} else {
			b.WriteString("?0")
		}
	}
}

// writeParam writes ";key" or ";key=value"; a true boolean is written bare,
// as RFC 8941 §4.1.1.2 requires.
func writeParam(b *strings.Builder, key string, v sfBareItem) {
	b.WriteByte(';')
	b.WriteString(key)
	if v.kind == sfBoolean && v.boolean {
		return
	}
	b.WriteByte('=')
	writeBareItem(b, v)
}

// writeSFString writes s as an sf-string. Callers validate that s is
// printable ASCII; quote and backslash are escaped here.
func writeSFString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
}

// isSFStringSafe reports whether s can be an sf-string: printable ASCII only.
func isSFStringSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func isLCAlpha(c byte) bool { return c >= 'a' && c <= 'z' }
func isAlpha(c byte) bool   { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool   { return c >= '0' && c <= '9' }

// isTChar reports whether c is an RFC 9110 token character.
func isTChar(c byte) bool {
	if isAlpha(c) || isDigit(c) {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
