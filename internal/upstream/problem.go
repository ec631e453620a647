package upstream

import (
	"bytes"
	"encoding/json"
	"html"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on what an error answer may contribute. Error strings end up in logs
// and gRPC statuses, so they are bounded and stripped of control characters
// whatever the upstream (or a proxy in front of it) sends.
const (
	maxErrorBody  = 64 << 10 // bytes read from any error answer
	maxTextDetail = 200      // runes of a non-problem body kept as Detail
	maxDetail     = 1000     // runes of a problem's detail
	maxTitle      = 200      // runes of a problem's title
	maxURIish     = 512      // runes of type and instance
	maxRequestID  = 128      // runes of a request id
	maxTextScan   = 16 << 10 // bytes of a text body looked at for Detail
)

// ParseProblem turns an error answer into an *Error. It reads
// application/problem+json (or any JSON) {type, status, title, detail,
// instance, request_id} and tolerates everything else: the HTTP status wins
// over the body's, fields of the wrong type are ignored, and a body that is not
// a JSON object (HTML from a proxy, plain text, nothing, garbage) still gives
// Title from the status text and Detail from a short sanitized prefix. The
// request id comes from the upvest-request-id header, else from the body.
// Only the first 64 KiB of body are considered.
func ParseProblem(status int, header http.Header, body []byte) *Error {
	if len(body) > maxErrorBody {
		body = body[:maxErrorBody]
	}
	e := &Error{StatusCode: status}
	var mt string
	if header != nil {
		mt = mediaType(header.Get("Content-Type"))
		e.RetryAfter = parseRetryAfter(header.Get("Retry-After"), time.Now())
	}
	if !(looksJSON(mt, body) && e.fillFromJSON(body)) {
		e.Detail = textDetail(mt, body)
	}
	if e.Title == "" {
		e.Title = http.StatusText(status)
	}
	if header != nil {
		if id := cleanText(header.Get("Upvest-Request-Id"), maxRequestID); id != "" {
			e.RequestID = id
		}
	}
	return e
}

func mediaType(ct string) string {
	if ct == "" {
		return ""
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		return mt
	}
	mt, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

// looksJSON: a JSON media type, or no (or a generic) one and a body that opens
// an object.
func looksJSON(mt string, body []byte) bool {
	switch {
	case mt == "application/json", mt == "application/problem+json", strings.HasSuffix(mt, "+json"):
		return true
	case mt == "", mt == "text/plain", mt == "application/octet-stream":
		b := bytes.TrimLeft(body, " \t\r\n")
		return len(b) > 0 && b[0] == '{'
	}
	return false
}

// fillFromJSON reports whether body is a JSON object, taking from it every
// problem field that is a string.
func (e *Error) fillFromJSON(body []byte) bool {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return false
	}
	e.Type = jsonString(raw["type"], maxURIish)
	e.Title = jsonString(raw["title"], maxTitle)
	e.Detail = jsonString(raw["detail"], maxDetail)
	if e.Detail == "" {
		// Not problem+json, but what many proxies and frameworks send.
		e.Detail = jsonString(raw["message"], maxDetail)
	}
	e.Instance = jsonString(raw["instance"], maxURIish)
	e.RequestID = jsonString(raw["request_id"], maxRequestID)
	return true
}

func jsonString(raw json.RawMessage, limit int) string {
	if len(raw) == 0 || raw[0] != '"' {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return cleanText(s, limit)
}

// textDetail keeps the gist of a non-problem body: the visible text of HTML,
// or the start of anything else, at most maxTextDetail printable runes.
func textDetail(mt string, body []byte) string {
	if len(body) > maxTextScan {
		body = body[:maxTextScan]
	}
	s := string(body)
	if strings.Contains(mt, "html") || strings.HasPrefix(strings.TrimSpace(s), "<") {
		s = html.UnescapeString(stripTags(s))
	}
	return cleanText(s, maxTextDetail)
}

// stripTags drops markup, and the content of script and style elements, so
// an HTML error page from a proxy becomes its visible text.
func stripTags(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for len(s) > 0 {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		b.WriteByte(' ')
		s = s[i:]
		lower := strings.ToLower(s[:min(len(s), 8)])
		for _, el := range [...]string{"script", "style"} {
			if strings.HasPrefix(lower, "<"+el) {
				if end := strings.Index(strings.ToLower(s), "</"+el); end >= 0 {
					s = s[end:]
				} else {
					s = ""
				}
				break
			}
		}
		j := strings.IndexByte(s, '>')
		if j < 0 {
			break
		}
		s = s[j+1:]
	}
	return b.String()
}

// cleanText returns at most limit runes of s with every run of white space
// turned into one space, and invalid UTF-8 and non-printable runes (control
// and format characters, such as bidi overrides) dropped, so upstream text
// cannot forge log lines.
func cleanText(s string, limit int) string {
	if isClean(s, limit) {
		return s
	}
	var b strings.Builder
	n, space := 0, false
	for _, r := range s {
		if n >= limit {
			break
		}
		switch {
		case unicode.IsSpace(r):
			space = n > 0
			continue
		case r == utf8.RuneError || !unicode.IsPrint(r):
			continue
		}
		if space {
			if n+1 >= limit {
				break
			}
			b.WriteByte(' ')
			n++
			space = false
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// isClean is the allocation-free fast path of cleanText: short printable ASCII
// with single inner spaces.
func isClean(s string, limit int) bool {
	if len(s) > limit {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c > '~' {
			return false
		}
		if c == ' ' && (i == 0 || i == len(s)-1 || s[i-1] == ' ') {
			return false
		}
	}
	return true
}
