package upvestsim

import (
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
)

// authenticate identifies the caller: upvest-client-id, then the version 15
// signature, then (except on /auth/token) the bearer token and its scopes.
func (s *Sim) authenticate(c *call) *problem {
	r := c.r
	switch id := r.Header.Get("upvest-client-id"); {
	case id == "":
		return unauthorized("missing upvest-client-id header")
	case id != s.cfg.ClientID:
		return unauthorized("unknown client id")
	}
	keyID, version, err := s.verify(c)
	if err != nil {
		return unauthorized("signature: %v", err)
	}
	if version != httpsig.Version15 {
		return unauthorized("signature: API calls must use signature version 15, got %d", version)
	}
	c.keyID = keyID
	if c.route.public {
		return nil
	}
	return s.authorize(c)
}

// verify checks the request's signature and returns its key id and
// version: in full, or only what it claims for all but one request in
// Config.VerifyOneIn.
func (s *Sim) verify(c *call) (keyID string, version int, err error) {
	r := c.r
	if n := uint64(s.cfg.VerifyOneIn); n > 1 && (s.signed.Add(1)-1)%n != 0 {
		return s.claimedSigner(r)
	}
	v, err := httpsig.Verify(r.Context(), r, c.body, s.tenantKeys, httpsig.VerifyOptions{
		Now:      s.cfg.Now,
		Required: requiredComponents(r, c.body, c.route.public),
	})
	if err != nil {
		return "", 0, err
	}
	return v.KeyID, v.Version, nil
}

// claimedSigner is the key id and version a request's signature headers
// claim, if the key is registered, without checking the signature.
func (s *Sim) claimedSigner(r *http.Request) (string, int, error) {
	keyID, version, err := httpsig.Claimed(r)
	if err != nil {
		return "", 0, err
	}
	if _, err := s.tenantKeys(r.Context(), keyID); err != nil {
		return "", 0, err
	}
	return keyID, version, nil
}

// requiredComponents is what a request must cover for the upstream to accept
// its signature: it depends on whether the request has a query, a body, an
// idempotency key and a bearer token.
func requiredComponents(r *http.Request, body []byte, public bool) []string {
	req := []string{"@method", "@path", "upvest-client-id"}
	if r.URL.RawQuery != "" {
		req = append(req, "@query")
	}
	if !public {
		req = append(req, "authorization")
	}
	if len(body) > 0 {
		req = append(req, "content-digest", "content-length", "content-type")
	}
	if len(r.Header.Values("idempotency-key")) > 0 {
		req = append(req, "idempotency-key")
	}
	return req
}

// checkNegotiation enforces upvest-api-version (absent or 1) and an accept
// header that admits application/json.
func checkNegotiation(r *http.Request) *problem {
	if vs := r.Header.Values("upvest-api-version"); len(vs) > 0 && (len(vs) != 1 || strings.TrimSpace(vs[0]) != "1") {
		return badRequest("unsupported upvest-api-version %q: only 1 is served", strings.Join(vs, ","))
	}
	if !acceptsJSON(strings.Join(r.Header.Values("Accept"), ",")) {
		return statusProblem(http.StatusNotAcceptable, "accept %q does not allow application/json", r.Header.Get("Accept"))
	}
	return nil
}

// acceptsJSON reports whether an accept header admits application/json: an
// absent header does, as does any range matching it with a non-zero q.
func acceptsJSON(accept string) bool {
	if strings.TrimSpace(accept) == "" {
		return true
	}
	for _, rng := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(rng))
		if err != nil {
			continue
		}
		if mt != "application/json" && mt != "application/*" && mt != "*/*" {
			continue
		}
		if q, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(q, 64); err != nil || f <= 0 {
				continue
			}
		}
		return true
	}
	return false
}
