package upvestsim

import (
	crand "crypto/rand"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sync"
)

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// idSource makes version 4 UUIDs. With a seed it draws from its own seeded
// stream, so a repeatable run (Config.FaultSeed) also repeats resource, event
// and request ids without disturbing the fault stream.
type idSource struct {
	mu  sync.Mutex
	rng *rand.Rand // nil: crypto/rand
}

func newIDSource(seed int64) *idSource {
	if seed == 0 {
		return &idSource{}
	}
	return &idSource{rng: rand.New(rand.NewPCG(uint64(seed), 0x1d5))}
}

func (g *idSource) uuid() string {
	var b [16]byte
	if g.rng == nil {
		_, _ = crand.Read(b[:])
	} else {
		g.mu.Lock()
		for i := range b {
			b[i] = byte(g.rng.Uint32())
		}
		g.mu.Unlock()
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// newAccessToken is always drawn from crypto/rand: tokens are credentials,
// even in a simulator, and must not be guessable from a seed.
func newAccessToken() string {
	var b [32]byte
	_, _ = crand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
