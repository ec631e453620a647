package webhook

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Verifying a P-521 signature costs about 3 ms of CPU, and anyone can send a
// delivery. So before any cryptography a delivery takes a token from its
// source address's budget and from a global one; without tokens it gets 429
// with Retry-After. A delivery whose signature verifies gives its tokens
// back: Upvest's own deliveries never use up the budget, only senders that
// fail verification do, and the verifications they can cause are bounded by
// the bursts plus the rates over time.

// RateLimits bounds the signature verifications that senders not (yet)
// proven to be Upvest can cause.
type RateLimits struct {
	PerSource   float64 // verifications per second per source address (IPv6: per /64)
	SourceBurst int     // ... of which this many at once
	Global      float64 // verifications per second in all
	GlobalBurst int
}

// DefaultRateLimits: a few hundred milliseconds of CPU per second at most,
// far above what Upvest's deliveries need (it sends one delivery of a
// subscription at a time, and gives its tokens back).
var DefaultRateLimits = RateLimits{PerSource: 10, SourceBurst: 20, Global: 50, GlobalBurst: 100}

func (l RateLimits) valid() bool {
	return l.PerSource > 0 && l.SourceBurst > 0 && l.Global > 0 && l.GlobalBurst > 0
}

// maxSources bounds the per-source budgets kept; beyond it, new sources
// share one budget until idle ones are dropped.
const maxSources = 10000

type verifyLimiter struct {
	limits RateLimits
	global *rate.Limiter

	mu       sync.Mutex
	sources  map[netip.Prefix]*sourceBudget
	overflow *rate.Limiter
}

type sourceBudget struct {
	lim  *rate.Limiter
	last time.Time
}

func newVerifyLimiter(l RateLimits) *verifyLimiter {
	return &verifyLimiter{
		limits:   l,
		global:   rate.NewLimiter(rate.Limit(l.Global), l.GlobalBurst),
		sources:  map[netip.Prefix]*sourceBudget{},
		overflow: rate.NewLimiter(rate.Limit(l.PerSource), l.SourceBurst),
	}
}

// take reserves one verification for the sender at remoteAddr at now. When
// ok, refund gives it back (the sender proved to be Upvest); otherwise wait
// is how long until one would be available.
func (v *verifyLimiter) take(remoteAddr string, now time.Time) (refund func(), wait time.Duration, ok bool) {
	src := v.source(remoteAddr, now)
	rs := src.ReserveN(now, 1)
	if d := rs.DelayFrom(now); !rs.OK() || d > 0 {
		rs.CancelAt(now)
		return nil, d, false
	}
	rg := v.global.ReserveN(now, 1)
	if d := rg.DelayFrom(now); !rg.OK() || d > 0 {
		rg.CancelAt(now)
		rs.CancelAt(now)
		return nil, d, false
	}
	return func() {
		rs.CancelAt(now)
		rg.CancelAt(now)
	}, 0, true
}

// source is the budget of remoteAddr's address (its /64 for IPv6, where one
// host commonly has the whole prefix).
func (v *verifyLimiter) source(remoteAddr string, now time.Time) *rate.Limiter {
	key := sourcePrefix(remoteAddr)
	v.mu.Lock()
	defer v.mu.Unlock()
	if b, ok := v.sources[key]; ok {
		b.last = now
		return b.lim
	}
	if len(v.sources) >= maxSources {
		v.sweep(now)
		if len(v.sources) >= maxSources {
			return v.overflow
		}
	}
	b := &sourceBudget{lim: rate.NewLimiter(rate.Limit(v.limits.PerSource), v.limits.SourceBurst), last: now}
	v.sources[key] = b
	return b.lim
}

// sweep drops the budgets idle long enough to be full again: a new one is
// the same.
func (v *verifyLimiter) sweep(now time.Time) {
	refill := time.Duration(float64(v.limits.SourceBurst) / v.limits.PerSource * float64(time.Second))
	for k, b := range v.sources {
		if now.Sub(b.last) > refill {
			delete(v.sources, k)
		}
	}
}

func sourcePrefix(remoteAddr string) netip.Prefix {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{} // unknown sources share one budget
	}
	addr = addr.Unmap().WithZone("")
	bits := 32
	if addr.Is6() {
		bits = 64
	}
	p, _ := addr.Prefix(bits)
	return p
}
