package upvestsim

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// FaultKind is a failure the Sim can inject into API requests.
type FaultKind string

const (
	// FaultLatency delays the operation by Fault.Delay, after the checks and
	// with the idempotency key reserved, so the request is "in flight".
	FaultLatency FaultKind = "latency"
	// Fault429, Fault500 and Fault503 answer at once, without effect.
	Fault429 FaultKind = "429"
	Fault500 FaultKind = "500"
	Fault503 FaultKind = "503"
	// Fault504 answers 504 after Fault.Delay, without effect.
	Fault504 FaultKind = "504"
	// FaultDropAfterApply lets the operation take effect (and be stored
	// under its idempotency key), then closes the connection without an
	// answer.
	FaultDropAfterApply FaultKind = "drop_after_apply"
	// FaultUnreadableAnswer lets the operation take effect, then answers
	// with its status but only the first half of its body, so the answer
	// (a 2xx above all: Upvest acted) cannot be decoded. An answer without
	// a body (204) goes out whole.
	FaultUnreadableAnswer FaultKind = "unreadable_answer"
)

// faultKinds are the kinds there are, in the order errors list them.
var faultKinds = []FaultKind{FaultLatency, Fault429, Fault500, Fault503, Fault504, FaultDropAfterApply, FaultUnreadableAnswer}

// randomFaultKinds are the kinds Config.FaultRate draws from: all but
// latency, which needs a delay.
var randomFaultKinds = faultKinds[1:]

func (k FaultKind) valid() bool { return slices.Contains(faultKinds, k) }

// status is the HTTP status a status fault answers with.
func (f Fault) status() int {
	switch f.Kind {
	case Fault429:
		return http.StatusTooManyRequests
	case Fault500:
		return http.StatusInternalServerError
	case Fault503:
		return http.StatusServiceUnavailable
	case Fault504:
		return http.StatusGatewayTimeout
	}
	return 0
}

// Fault is a fault to inject into the next Count API requests matching
// Method and PathPrefix ("" matches all).
type Fault struct {
	Kind       FaultKind
	Method     string
	PathPrefix string
	Count      int           // 0 means 1
	Delay      time.Duration // for latency and 504
}

func (f Fault) matches(method, path string) bool {
	return (f.Method == "" || strings.EqualFold(f.Method, method)) && strings.HasPrefix(path, f.PathPrefix)
}

// faultState holds the injected faults and the seeded random source of
// Config.FaultRate. It has its own lock so fault decisions never wait on
// the simulated state.
type faultState struct {
	mu       sync.Mutex
	rate     float64
	rng      *rand.Rand
	injected []*Fault // Count is what is left
}

func newFaultState(rate float64, seed int64) *faultState {
	s1, s2 := rand.Uint64(), rand.Uint64()
	if seed != 0 {
		s1, s2 = uint64(seed), 0xfa17
	}
	return &faultState{rate: rate, rng: rand.New(rand.NewPCG(s1, s2))}
}

// take decides the fault of one request: the oldest matching injected
// fault, else a random one at the configured rate. The random draw depends
// only on the order of requests, so a seed repeats the sequence.
func (fs *faultState) take(method, path string) (Fault, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i, f := range fs.injected {
		if f.matches(method, path) {
			f.Count--
			if f.Count <= 0 {
				fs.injected = append(fs.injected[:i], fs.injected[i+1:]...)
			}
			return *f, true
		}
	}
	if fs.rate > 0 && fs.rng.Float64() < fs.rate {
		return Fault{Kind: randomFaultKinds[fs.rng.IntN(len(randomFaultKinds))]}, true
	}
	return Fault{}, false
}

// InjectFault makes the next f.Count requests matching f fail as f.Kind
// says. Faults are consumed in the order injected; an unknown kind panics,
// as it is a bug in the test.
func (s *Sim) InjectFault(f Fault) {
	if !f.Kind.valid() {
		panic(fmt.Sprintf("upvestsim: unknown fault kind %q", f.Kind))
	}
	if f.Count <= 0 {
		f.Count = 1
	}
	s.faults.mu.Lock()
	s.faults.injected = append(s.faults.injected, &f)
	s.faults.mu.Unlock()
}

// ClearFaults drops every injected fault not yet consumed.
func (s *Sim) ClearFaults() {
	s.faults.mu.Lock()
	s.faults.injected = nil
	s.faults.mu.Unlock()
}
