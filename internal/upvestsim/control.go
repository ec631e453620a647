package upvestsim

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// controlPrefix is where the Sim serves its own inspection and control
// endpoints. They need no credentials and never see faults: they are the
// test harness, not the API.
const controlPrefix = "/_sim/"

// controlRoutes maps "METHOD name" (name = the path after /_sim/) to its
// handler.
var controlRoutes = map[string]func(s *Sim, r *http.Request) (*reply, *problem){
	"GET events":         func(s *Sim, _ *http.Request) (*reply, *problem) { return jsonReply(http.StatusOK, s.Events()), nil },
	"GET requests":       func(s *Sim, _ *http.Request) (*reply, *problem) { return jsonReply(http.StatusOK, s.Requests()), nil },
	"GET deliveries":     func(s *Sim, _ *http.Request) (*reply, *problem) { return jsonReply(http.StatusOK, s.Deliveries()), nil },
	"GET effects":        (*Sim).controlEffects,
	"GET ledger":         func(s *Sim, _ *http.Request) (*reply, *problem) { return jsonReply(http.StatusOK, s.Ledger()), nil },
	"GET token_requests": (*Sim).controlTokenRequests,
	"GET webhook_key":    (*Sim).controlWebhookKey,
	"POST faults":        (*Sim).controlFaults,
	"POST advance": func(s *Sim, _ *http.Request) (*reply, *problem) {
		s.Advance()
		return emptyReply(http.StatusNoContent), nil
	},
	"GET cash_balance":    (*Sim).controlGetBalance,
	"PUT cash_balance":    (*Sim).controlSetBalance,
	"POST pause_webhooks": (*Sim).controlPause,
	"GET healthz": func(*Sim, *http.Request) (*reply, *problem) {
		return jsonReply(http.StatusOK, map[string]string{"status": "SERVING"}), nil
	},
	"GET webhooks": func(s *Sim, _ *http.Request) (*reply, *problem) {
		return jsonReply(http.StatusOK, s.subscriptionsJSON()), nil
	},
}

func (s *Sim) serveControl(w http.ResponseWriter, r *http.Request) {
	requestID := s.ids.uuid()
	w.Header().Set("upvest-request-id", requestID)
	name := strings.TrimPrefix(r.URL.Path, controlPrefix)
	h, ok := controlRoutes[r.Method+" "+name]
	if !ok {
		var allowed []string
		for key := range controlRoutes {
			if m, n, _ := strings.Cut(key, " "); n == name {
				allowed = append(allowed, m)
			}
		}
		rep := notFound("no simulator endpoint %s", r.URL.Path).reply(requestID)
		if len(allowed) > 0 {
			slices.Sort(allowed)
			rep = statusProblem(http.StatusMethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path).reply(requestID)
			rep.allow = strings.Join(allowed, ", ")
		}
		writeReply(w, rep)
		return
	}
	rep, p := h(s, r)
	if p != nil {
		rep = p.reply(requestID)
	}
	writeReply(w, rep)
}

func (s *Sim) controlEffects(r *http.Request) (*reply, *problem) {
	key := r.URL.Query().Get("idempotency_key")
	if key == "" {
		return nil, badRequest("query parameter idempotency_key is required")
	}
	return jsonReply(http.StatusOK, map[string]any{"idempotency_key": key, "effects": s.Effects(key)}), nil
}

func (s *Sim) controlTokenRequests(*http.Request) (*reply, *problem) {
	return jsonReply(http.StatusOK, map[string]int{"token_requests": s.TokenRequests()}), nil
}

func (s *Sim) controlWebhookKey(*http.Request) (*reply, *problem) {
	return jsonReply(http.StatusOK, map[string]string{"kid": s.WebhookKeyID()}), nil
}

// faultRequest is the body of POST /_sim/faults; delay is a Go duration
// ("250ms").
type faultRequest struct {
	Kind       FaultKind `json:"kind"`
	Method     string    `json:"method"`
	PathPrefix string    `json:"path_prefix"`
	Count      int       `json:"count"`
	Delay      string    `json:"delay"`
}

// parseFaultRequest decodes and checks a POST /_sim/faults body.
func parseFaultRequest(contentType string, body []byte) (Fault, *problem) {
	var req faultRequest
	if p := decodeJSON(contentType, body, &req); p != nil {
		return Fault{}, p
	}
	f := Fault{Kind: req.Kind, Method: req.Method, PathPrefix: req.PathPrefix, Count: req.Count}
	if !f.Kind.valid() {
		return f, badRequest("kind: %q is not one of %s", req.Kind, kindList())
	}
	if req.Count < 0 {
		return f, badRequest("count: must not be negative")
	}
	if req.Delay != "" {
		d, err := time.ParseDuration(req.Delay)
		if err != nil || d < 0 {
			return f, badRequest("delay: %q is not a non-negative duration", req.Delay)
		}
		f.Delay = d
	}
	return f, nil
}

// kindList names the fault kinds, for errors.
func kindList() string {
	names := make([]string, len(faultKinds))
	for i, k := range faultKinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

func (s *Sim) controlFaults(r *http.Request) (*reply, *problem) {
	body, p := readControlBody(r)
	if p != nil {
		return nil, p
	}
	f, p := parseFaultRequest(r.Header.Get("Content-Type"), body)
	if p != nil {
		return nil, p
	}
	s.InjectFault(f)
	return emptyReply(http.StatusNoContent), nil
}

func (s *Sim) controlGetBalance(r *http.Request) (*reply, *problem) {
	group := r.URL.Query().Get("account_group_id")
	if !uuidPattern.MatchString(group) {
		return nil, badRequest("query parameter account_group_id must be a UUID")
	}
	return jsonReply(http.StatusOK, s.CashBalance(group)), nil
}

func (s *Sim) controlSetBalance(r *http.Request) (*reply, *problem) {
	body, p := readControlBody(r)
	if p != nil {
		return nil, p
	}
	var cb CashBalance
	if p := decodeJSON(r.Header.Get("Content-Type"), body, &cb); p != nil {
		return nil, p
	}
	if err := s.SetCashBalance(cb); err != nil {
		return nil, badRequest("%v", err)
	}
	return jsonReply(http.StatusOK, s.CashBalance(cb.AccountGroupID)), nil
}

func (s *Sim) controlPause(r *http.Request) (*reply, *problem) {
	body, p := readControlBody(r)
	if p != nil {
		return nil, p
	}
	var req struct {
		Paused *bool `json:"paused"`
	}
	if p := decodeJSON(r.Header.Get("Content-Type"), body, &req); p != nil {
		return nil, p
	}
	if req.Paused == nil {
		return nil, badRequest("paused: is required")
	}
	s.PauseWebhooks(*req.Paused)
	return emptyReply(http.StatusNoContent), nil
}

func readControlBody(r *http.Request) ([]byte, *problem) {
	body, err := readBody(r)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	return body, nil
}
