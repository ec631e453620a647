package main

import (
	"errors"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/google/pprof/profile"
)

// Where the gateway's CPU goes, from the CPU profile of a unary
// measurement: each sample is put in the first part whose function is on
// its stack. The signing share is the targets' "signing CPU ÷ gateway CPU
// per call" measured inside the gateway, under the load itself: a
// signature timed alone, on an otherwise idle machine, runs faster than
// one beside the load's other work (the machine's two CPUs share a core).

// cpuPart is one part of a profile and the functions that make it.
type cpuPart struct {
	Name  string
	funcs []string // substrings of function names
}

var cpuParts = []cpuPart{
	{"signing", []string{"httpsig.(*Signer).Sign"}},
	{"idempotency store", []string{"internal/idempotency."}},
	// HTTP/1.1, or HTTP/2 over TLS (-upstream-tls: the gateway's callers
	// speak plain text in the bench, so TLS is the upstream's).
	{"upstream HTTP client", []string{"internal/upstream.", "net/http.(*persistConn)", "net/http.(*Transport)",
		"net/http.(*http2", "net/http.http2", "crypto/tls."}},
	{"request log", []string{"internal/server.logCall"}},
	// The reporter, not the interceptor: that is on every call's stack.
	{"metrics", []string{"prometheus/client_golang", "providers/prometheus.(*reporter)", "internal/metrics."}},
	{"webhook ingest", []string{"internal/webhook."}},
	// A stream's goroutine waits in internal/events: its sends count here.
	{"event fan-out and sends", []string{"internal/events.", "internal/service.sendShared"}},
	{"allocation and GC", []string{"runtime.gcBgMarkWorker", "runtime.mallocgc", "runtime.gcAssist", "runtime.bgsweep", "runtime.bgscavenge"}},
	{"embedded NATS", []string{"nats-io/nats-server", "nats-io/nats.go"}},
	{"REST face", []string{"net/http.(*conn).serve", "grpc-gateway", "internal/server.(*inProcessConn)"}},
	{"gRPC", []string{"google.golang.org/grpc"}},
	{"scheduler and idle", []string{"runtime.schedule", "runtime.findRunnable", "runtime.mcall", "runtime.park_m", "runtime.futex"}},
}

// otherPart is what no part claims.
const otherPart = "other"

// CPUShares is the share of the gateway's CPU samples per part, 0 to 1.
type CPUShares map[string]float64

// profileShares reads a CPU profile and divides its samples into parts.
func profileShares(path string) (CPUShares, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		return nil, err
	}
	value := len(p.SampleType) - 1 // CPU time (the other is the sample count)
	for i, st := range p.SampleType {
		if st.Type == "cpu" {
			value = i
		}
	}
	by := map[string]int64{}
	var total int64
	for _, s := range p.Sample {
		v := s.Value[value]
		total += v
		by[partOf(s)] += v
	}
	shares := CPUShares{}
	if total == 0 {
		return shares, nil
	}
	for name, v := range by {
		shares[name] = float64(v) / float64(total)
	}
	return shares, nil
}

func partOf(s *profile.Sample) string {
	for _, part := range cpuParts {
		for _, loc := range s.Location {
			for _, line := range loc.Line {
				if line.Function == nil {
					continue
				}
				for _, fn := range part.funcs {
					if strings.Contains(line.Function.Name, fn) {
						return part.Name
					}
				}
			}
		}
	}
	return otherPart
}

// partNames are the parts in the order of the results' table.
func partNames() []string {
	names := make([]string, 0, len(cpuParts)+1)
	for _, p := range cpuParts {
		names = append(names, p.Name)
	}
	return append(names, otherPart)
}

// startCPUProfile profiles this process into path until stop.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return nil, errors.Join(err, f.Close())
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
