package loadtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
)

// StreamsConfig says which Watch streams OpenStreams opens: top-up event
// streams (WatchTopupEvents), which cost the gateway no upstream call.
type StreamsConfig struct {
	Addr    string // the gateway's gRPC address
	Streams int
	// Conns is how many connections the streams share, as many clients
	// would hold them (default: one per 1,000 streams).
	Conns int
	// AccountGroups: stream i watches the top-ups of AccountGroups[i mod
	// len]; empty: every top-up (unfiltered).
	AccountGroups []string
	// MeasureFrom: events created before it are counted but left out of
	// the latency (a warm-up).
	MeasureFrom time.Time
}

// StreamsResult is what the streams received.
type StreamsResult struct {
	Streams  int
	Received int64   // events, over all streams
	Latency  Summary // created_at → received, events created from MeasureFrom
	// Failed counts streams that ended before they were closed, with a few
	// of their errors.
	Failed int
	Errors []string
	// CPU is the CPU time the process holding the streams used while they
	// were open (the gateway's own, when they are in its process).
	CPU time.Duration
}

// Streams are open Watch streams; Stop closes them.
type Streams struct {
	cfg    StreamsConfig
	conns  []*grpc.ClientConn
	cancel context.CancelFunc
	done   sync.WaitGroup

	cpuAtOpen   time.Duration
	received    atomic.Int64
	measureFrom atomic.Int64 // unix ns: see StreamsConfig.MeasureFrom
	mu          sync.Mutex
	samples     []time.Duration
	failed      int
	errs        []string
}

// openParallelism bounds how many streams are being opened at once.
const openParallelism = 64

// OpenStreams opens cfg.Streams streams and returns once each has received
// its first message (the heartbeat that says the subscription is in
// place), or the first error.
func OpenStreams(ctx context.Context, cfg StreamsConfig) (*Streams, error) {
	if cfg.Conns <= 0 {
		cfg.Conns = max(1, (cfg.Streams+999)/1000)
	}
	s := &Streams{cfg: cfg, cpuAtOpen: ProcessCPU()}
	s.Measure(cfg.MeasureFrom)
	for range cfg.Conns {
		conn, err := grpc.NewClient("passthrough:///"+cfg.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			s.closeConns()
			return nil, err
		}
		s.conns = append(s.conns, conn)
	}
	streamCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(openParallelism)
	for i := range cfg.Streams {
		g.Go(func() error {
			req := &gatewayv1.WatchTopupEventsRequest{}
			if len(cfg.AccountGroups) > 0 {
				req.AccountGroupId = cfg.AccountGroups[i%len(cfg.AccountGroups)]
			}
			stream, err := s.conns[i%len(s.conns)].NewStream(streamCtx, &watchTopupEvents,
				gatewayv1.TopupService_WatchTopupEvents_FullMethodName, grpc.ForceCodecV2(stampCodec{}))
			if err == nil {
				err = stream.SendMsg(req)
			}
			if err == nil {
				err = stream.CloseSend()
			}
			if err != nil {
				return fmt.Errorf("stream %d: %w", i, err)
			}
			first := make(chan error, 1)
			s.done.Go(func() { s.receive(stream, first) })
			select {
			case err := <-first:
				if err != nil {
					return fmt.Errorf("stream %d: %w", i, err)
				}
				return nil
			case <-gctx.Done():
				return gctx.Err()
			}
		})
	}
	if err := g.Wait(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// watchTopupEvents is TopupService.WatchTopupEvents, read as eventStamps.
var watchTopupEvents = grpc.StreamDesc{StreamName: "WatchTopupEvents", ServerStreams: true}

// receive reads one stream until it ends, recording each event's latency.
func (s *Streams) receive(stream grpc.ClientStream, first chan<- error) {
	var samples []time.Duration
	var m eventStamp
	started := false
	for {
		err := stream.RecvMsg(&m)
		if !started {
			started = true
			first <- err
		}
		if err != nil {
			s.mu.Lock()
			s.samples = append(s.samples, samples...)
			if status.Code(err) != codes.Canceled && !errors.Is(err, context.Canceled) {
				s.failed++
				if len(s.errs) < 5 {
					s.errs = append(s.errs, err.Error())
				}
			}
			s.mu.Unlock()
			return
		}
		if m.event {
			now := time.Now()
			s.received.Add(1)
			if m.created.UnixNano() >= s.measureFrom.Load() {
				samples = append(samples, now.Sub(m.created))
			}
		}
	}
}

// Measure leaves events created before from out of the latency.
func (s *Streams) Measure(from time.Time) {
	if from.IsZero() {
		s.measureFrom.Store(0)
		return
	}
	s.measureFrom.Store(from.UnixNano())
}

// Received is how many events the streams have received so far.
func (s *Streams) Received() int64 { return s.received.Load() }

// Stop closes the streams and returns what they received.
func (s *Streams) Stop() StreamsResult {
	s.cancel()
	s.done.Wait()
	s.closeConns()
	s.mu.Lock()
	defer s.mu.Unlock()
	return StreamsResult{
		Streams:  s.cfg.Streams,
		Received: s.received.Load(),
		Latency:  summarize(s.samples),
		Failed:   s.failed,
		Errors:   s.errs,
		CPU:      ProcessCPU() - s.cpuAtOpen,
	}
}

func (s *Streams) closeConns() {
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}
