package webhook

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/upvest-gateway/gateway/internal/tokenbucket"
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

	mu       sync.Mutex
	global   *tokenbucket.Bucket
	sources  map[netip.Prefix]*tokenbucket.Bucket
	overflow *tokenbucket.Bucket
}

func newVerifyLimiter(l RateLimits) *verifyLimiter {
	return &verifyLimiter{
		limits:   l,
		global:   tokenbucket.New(l.Global, l.GlobalBurst, time.Time{}),
		sources:  map[netip.Prefix]*tokenbucket.Bucket{},
		overflow: tokenbucket.New(l.PerSource, l.SourceBurst, time.Time{}),
	}
}

// take reserves one verification for the sender at remoteAddr at now, from
// its source's budget and the global one. When ok, refund gives it back
// (the sender proved to be Upvest), in full however many deliveries came
// in between; otherwise wait is how long until one would be available.
func (v *verifyLimiter) take(remoteAddr string, now time.Time) (refund func(), wait time.Duration, ok bool) {
	key := sourcePrefix(remoteAddr)
	v.mu.Lock()
	defer v.mu.Unlock()
	src := v.source(key, now)
	if d := max(src.Wait(now), v.global.Wait(now)); d > 0 {
		return nil, d, false
	}
	src.Take(now)
	v.global.Take(now)
	return func() {
		v.mu.Lock()
		defer v.mu.Unlock()
		src.GiveBack()
		v.global.GiveBack()
	}, 0, true
}

// source is the budget of key, a source address (its /64 for IPv6, where
// one host commonly has the whole prefix). v.mu is held.
func (v *verifyLimiter) source(key netip.Prefix, now time.Time) *tokenbucket.Bucket {
	if b, ok := v.sources[key]; ok {
		return b
	}
	if len(v.sources) >= maxSources {
		v.sweep(now)
		if len(v.sources) >= maxSources {
			return v.overflow
		}
	}
	b := tokenbucket.New(v.limits.PerSource, v.limits.SourceBurst, now)
	v.sources[key] = b
	return b
}

// sweep drops the budgets idle long enough to be full again: a new one is
// the same.
func (v *verifyLimiter) sweep(now time.Time) {
	refill := time.Duration(float64(v.limits.SourceBurst) / v.limits.PerSource * float64(time.Second))
	for k, b := range v.sources {
		if now.Sub(b.LastUsed()) > refill {
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
