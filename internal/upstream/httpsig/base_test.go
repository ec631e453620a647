package httpsig

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestParseSignatureInput(t *testing.T) {
	tests := []struct {
		name   string
		header string
		want   []Params // compared on exported fields
		str    []string // String() of each member
	}{
		{
			name:   "README shape",
			header: `sig1=("@method" "@path" "content-digest");keyid="k1";created=1700000000;nonce="abc";expires=1700000060`,
			want:   []Params{{Label: "sig1", Components: []string{"@method", "@path", "content-digest"}, KeyID: "k1", Created: 1700000000, Nonce: "abc", Expires: 1700000060}},
			str:    []string{`("@method" "@path" "content-digest");keyid="k1";created=1700000000;nonce="abc";expires=1700000060`},
		},
		{
			name:   "extra whitespace is normalised",
			header: `  sig1=(  "@method"   "@path" );keyid="k1";  created=1 ,	sig2=("@path");keyid="k2";created=2  `,
			want: []Params{
				{Label: "sig1", Components: []string{"@method", "@path"}, KeyID: "k1", Created: 1},
				{Label: "sig2", Components: []string{"@path"}, KeyID: "k2", Created: 2},
			},
			str: []string{`("@method" "@path");keyid="k1";created=1`, `("@path");keyid="k2";created=2`},
		},
		{
			name:   "order and unknown parameters preserved",
			header: `sig1=("@method");tag="x";expires=9;alg="ed25519";flag;keyid="a\"b\\c";n=-1.50;b=:AQID:;t=tok/en;f=?0;created=3`,
			want:   []Params{{Label: "sig1", Components: []string{"@method"}, KeyID: `a"b\c`, Created: 3, Expires: 9, Alg: "ed25519"}},
			str:    []string{`("@method");tag="x";expires=9;alg="ed25519";flag;keyid="a\"b\\c";n=-1.5;b=:AQID:;t=tok/en;f=?0;created=3`},
		},
		{
			name:   "empty inner list",
			header: `sig1=();created=1`,
			want:   []Params{{Label: "sig1", Components: []string{}, Created: 1}},
			str:    []string{`();created=1`},
		},
		{
			name:   "unpadded byte sequence parameter",
			header: `sig1=("a");b=:AQI:`,
			want:   []Params{{Label: "sig1", Components: []string{"a"}}},
			str:    []string{`("a");b=:AQI=:`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSignatureInput(tt.header)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d members, want %d", len(got), len(tt.want))
			}
			for i := range got {
				g, w := got[i], tt.want[i]
				if g.Label != w.Label || !slices.Equal(g.Components, w.Components) || g.KeyID != w.KeyID ||
					g.Created != w.Created || g.Expires != w.Expires || g.Nonce != w.Nonce || g.Alg != w.Alg {
					t.Errorf("member %d = %+v, want %+v", i, g, w)
				}
				if s := g.String(); s != tt.str[i] {
					t.Errorf("String() = %s, want %s", s, tt.str[i])
				}
			}
		})
	}
}

func TestParseSignatureInputErrors(t *testing.T) {
	for _, h := range []string{
		``,
		`   `,
		`sig1`,                                 // boolean member, not an inner list
		`sig1=:AAAA:`,                          // item, not an inner list
		`sig1=("a" b)`,                         // token in the list
		`sig1=("a";x=1)`,                       // component parameters
		`sig1=("a"`,                            // unterminated
		`sig1=("a"),`,                          // trailing comma
		`sig1=("a") sig2=("b")`,                // missing comma
		`Sig1=("a")`,                           // upper-case key
		`sig1=("a"), sig1=("b")`,               // duplicate label
		`sig1=("a");created=1;created=2`,       // duplicate parameter
		`sig1=("a");keyid=k`,                   // keyid not a string
		`sig1=("a");created="1"`,               // created not an integer
		`sig1=("a");expires=1.5`,               // expires not an integer
		`sig1=("a");nonce=1`,                   // nonce not a string
		`sig1=("a");created=1234567890123456`,  // integer too long
		"sig1=(\"a\tb\")",                      // control character in string
		`sig1=("a\x")`,                         // bad escape
		`sig1=("a");b=:!!:`,                    // bad base64
		`sig1=("a");x=?2`,                      // bad boolean
		`sig1=("a");x=1.2345`,                  // too many decimals
		`sig1=("a");x=1.`,                      // empty fraction
		`sig1=("a");x=-`,                       // sign without digits
		`sig1=("a")("b")`,                      // junk after member
		`sig1=("@method" "@path");keyid="k" ;`, // dangling
		`sig1=("é")`,                           // non-ASCII
	} {
		if p, err := ParseSignatureInput(h); err == nil {
			t.Errorf("ParseSignatureInput(%q) = %+v, want error", h, p)
		}
	}
}

func TestParamsStringBuilt(t *testing.T) {
	tests := []struct {
		p    Params
		want string
	}{
		{Params{Components: []string{"@method", "@path"}, KeyID: "k", Created: 10, Nonce: "n", Expires: 70},
			`("@method" "@path");keyid="k";created=10;nonce="n";expires=70`},
		{Params{Components: []string{"@method"}, Created: 10}, `("@method");created=10`},
		{Params{Components: nil, KeyID: `q"uote`, Alg: "ed25519"}, `();keyid="q\"uote";alg="ed25519"`},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("String() = %s, want %s", got, tt.want)
		}
	}

	// Fields changed after parsing are reflected; new ones are appended.
	ps, err := ParseSignatureInput(`sig1=("a");created=1;x=2`)
	if err != nil {
		t.Fatal(err)
	}
	p := ps[0]
	p.Created, p.KeyID = 5, "k"
	if got, want := p.String(), `("a");created=5;x=2;keyid="k"`; got != want {
		t.Errorf("String() = %s, want %s", got, want)
	}
}

func baseRequest(t *testing.T) *http.Request {
	req, err := http.NewRequest(http.MethodPost, "https://API.Upvest.test/payments/top%2Fups/a%20b?limit=10&order=DESC", strings.NewReader(`{"key": "value"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Method = "post"
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Length", "16")
	req.Header.Set("Content-Digest", ContentDigest([]byte(`{"key": "value"}`)))
	req.Header["X-Multi"] = []string{" a ", "\tb,c", ""}
	req.Header.Set("X-Empty", "")
	return req
}

func TestSignatureBaseVectors(t *testing.T) {
	p := Params{
		Components: []string{"@method", "@path", "@query", "@authority", "@request-target", "content-type", "content-length", "content-digest", "x-multi", "x-empty"},
		KeyID:      "key-1", Created: 1700000000, Nonce: "n0nce", Expires: 1700000060,
	}
	want15 := strings.Join([]string{
		`"@method": POST`,
		`"@path": /payments/top%2Fups/a%20b`,
		`"@query": ?limit=10&order=DESC`,
		`"@authority": api.upvest.test`,
		`"@request-target": /payments/top%2Fups/a%20b?limit=10&order=DESC`,
		`"content-type": application/json`,
		`"content-length": 16`,
		`"content-digest": sha-512=:Hd9/AvGZkbjitW1+Ml8Fg1ux1mtcDYe6mLQjDyoowIWa3LM/PmwN2v9O+MjtQGrCA3EQWUL54dlgxKHyYbrucw==:`,
		`"x-multi": a, b,c, `,
		`"x-empty": `,
		`"@signature-params": ("@method" "@path" "@query" "@authority" "@request-target" "content-type" "content-length" "content-digest" "x-multi" "x-empty");keyid="key-1";created=1700000000;nonce="n0nce";expires=1700000060`,
	}, "\n")
	got, err := SignatureBase(baseRequest(t), p, 15)
	if err != nil {
		t.Fatal(err)
	}
	if got != want15 {
		t.Errorf("v15 base =\n%s\nwant\n%s", got, want15)
	}

	p6 := Params{Components: []string{"@method", "@path", "digest"}, KeyID: "k", Created: 1}
	req := baseRequest(t)
	req.Header.Set("Digest", "SHA-256=abc=")
	want6 := "@method: POST\n@path: /payments/top%2Fups/a%20b\ndigest: SHA-256=abc=\n" + `@signature-params: ("@method" "@path" "digest");keyid="k";created=1`
	if got, err := SignatureBase(req, p6, 6); err != nil || got != want6 {
		t.Errorf("v6 base = %q, %v\nwant %q", got, err, want6)
	}
}

func TestSignatureBaseDerived(t *testing.T) {
	tests := []struct {
		name string
		req  func(*http.Request)
		comp string
		want string
	}{
		{"empty path", func(r *http.Request) { r.URL.Path, r.URL.RawPath = "", "" }, "@path", "/"},
		{"absent query", func(r *http.Request) { r.URL.RawQuery = "" }, "@query", "?"},
		{"empty method is GET", func(r *http.Request) { r.Method = "" }, "@method", "GET"},
		{"host header fallback", func(r *http.Request) { r.Host = "gw.test:8443" }, "host", "gw.test:8443"},
		{"authority from URL", func(r *http.Request) { r.Host = "" }, "@authority", "api.upvest.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := baseRequest(t)
			tt.req(req)
			got, err := SignatureBase(req, Params{Components: []string{tt.comp}}, 15)
			if err != nil {
				t.Fatal(err)
			}
			if want := `"` + tt.comp + `": ` + tt.want + "\n"; !strings.HasPrefix(got, want) {
				t.Errorf("base = %q, want prefix %q", got, want)
			}
		})
	}
}

func TestSignatureBaseErrors(t *testing.T) {
	tests := []struct {
		name    string
		req     func(*http.Request)
		p       Params
		version int
		want    error
	}{
		{"missing header", nil, Params{Components: []string{"accept"}}, 15, ErrMissingComponent},
		{"missing authority", func(r *http.Request) { r.Host, r.URL.Host = "", "" }, Params{Components: []string{"@authority"}}, 15, ErrMissingComponent},
		{"unknown derived", nil, Params{Components: []string{"@status"}}, 15, ErrUnsupportedComponent},
		{"upper-case name", nil, Params{Components: []string{"Content-Type"}}, 15, ErrInvalidComponent},
		{"name with colon", nil, Params{Components: []string{"content-type: x"}}, 6, ErrInvalidComponent},
		{"empty name", nil, Params{Components: []string{""}}, 15, ErrInvalidComponent},
		{"duplicate", nil, Params{Components: []string{"@path", "@path"}}, 15, ErrInvalidComponent},
		{"newline in value", func(r *http.Request) { r.Header["Accept"] = []string{"a\nb"} }, Params{Components: []string{"accept"}}, 15, ErrInvalidComponent},
		{"NUL in second value", func(r *http.Request) { r.Header["Accept"] = []string{"a", "b\x00"} }, Params{Components: []string{"accept"}}, 15, ErrInvalidComponent},
		{"DEL in value", func(r *http.Request) { r.Header["Accept"] = []string{"a\x7f"} }, Params{Components: []string{"accept"}}, 15, ErrInvalidComponent},
		{"newline in query", func(r *http.Request) { r.URL.RawQuery = "a\nb" }, Params{Components: []string{"@query"}}, 15, ErrInvalidComponent},
		{"method with space", func(r *http.Request) { r.Method = "GET X" }, Params{Components: []string{"@method"}}, 15, ErrInvalidComponent},
		{"opaque URL", func(r *http.Request) { r.URL = &url.URL{Scheme: "https", Opaque: "//h/p"} }, Params{Components: []string{"@path"}}, 15, ErrInvalidComponent},
		{"too many components", nil, Params{Components: make([]string, MaxComponents+1)}, 15, ErrInvalidComponent},
		{"newline in nonce", nil, Params{Components: []string{"@path"}, Nonce: "a\nb"}, 15, nil},
		{"bad version", nil, Params{Components: []string{"@path"}}, 14, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := baseRequest(t)
			if tt.req != nil {
				tt.req(req)
			}
			_, err := SignatureBase(req, tt.p, tt.version)
			if err == nil {
				t.Fatal("SignatureBase succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := SignatureBase(nil, Params{}, 15); err == nil {
		t.Error("nil request accepted")
	}
}
