package loadtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Subscribers are open streams somewhere: in this process or another.
type Subscribers interface {
	// Received is how many events they have received so far.
	Received() (int64, error)
	// Measure leaves events created before from out of the latency (a
	// warm-up).
	Measure(from time.Time) error
	// Stop closes them and returns what they received.
	Stop() (StreamsResult, error)
}

// Subscribe opens the streams of cfg, returning once all are open.
type Subscribe func(ctx context.Context, cfg StreamsConfig) (Subscribers, error)

// InProcess opens the streams in this process.
func InProcess(ctx context.Context, cfg StreamsConfig) (Subscribers, error) {
	s, err := OpenStreams(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return inProcess{s}, nil
}

type inProcess struct{ s *Streams }

func (p inProcess) Received() (int64, error)     { return p.s.Received(), nil }
func (p inProcess) Measure(from time.Time) error { p.s.Measure(from); return nil }
func (p inProcess) Stop() (StreamsResult, error) { return p.s.Stop(), nil }

// InChildProcess opens the streams in a child process that newCmd makes:
// a program that calls ServeSubscriberProcess on its standard input and
// output (e.g. a test binary re-run with an environment variable that
// makes its TestMain do so). The gateway's memory and CPU are then its own.
func InChildProcess(newCmd func() *exec.Cmd) Subscribe {
	return func(ctx context.Context, cfg StreamsConfig) (Subscribers, error) {
		return StartSubscriberProcess(ctx, newCmd(), cfg)
	}
}

// SubscriberProcess is a child process holding streams.
type SubscriberProcess struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *json.Decoder
}

// The child's answers: one JSON object per line.
type processReply struct {
	Ready    bool           `json:"ready,omitempty"`
	Received int64          `json:"received,omitempty"`
	Result   *StreamsResult `json:"result,omitempty"`
	Error    string         `json:"error,omitempty"`
}

// StartSubscriberProcess starts cmd and has it open the streams of cfg; it
// returns once they are open.
func StartSubscriberProcess(ctx context.Context, cmd *exec.Cmd, cfg StreamsConfig) (*SubscriberProcess, error) {
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &SubscriberProcess{cmd: cmd, in: in, out: json.NewDecoder(bufio.NewReader(out))}
	stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
	defer stop()
	if err := json.NewEncoder(in).Encode(cfg); err != nil {
		p.kill()
		return nil, err
	}
	r, err := p.reply()
	if err != nil || !r.Ready {
		p.kill()
		if err == nil {
			err = errors.New("not ready")
		}
		return nil, fmt.Errorf("loadtest: subscriber process: %w", err)
	}
	return p, nil
}

func (p *SubscriberProcess) reply() (processReply, error) {
	var r processReply
	if err := p.out.Decode(&r); err != nil {
		return r, err
	}
	if r.Error != "" {
		return r, errors.New(r.Error)
	}
	return r, nil
}

// Pid is the child's process id (for its RSS, say).
func (p *SubscriberProcess) Pid() int { return p.cmd.Process.Pid }

// Received asks the child how many events its streams have received.
func (p *SubscriberProcess) Received() (int64, error) {
	if _, err := io.WriteString(p.in, "received\n"); err != nil {
		return 0, err
	}
	r, err := p.reply()
	return r.Received, err
}

// Measure has the child leave events created before from out of the
// latency.
func (p *SubscriberProcess) Measure(from time.Time) error {
	if _, err := io.WriteString(p.in, "measure "+strconv.FormatInt(from.UnixNano(), 10)+"\n"); err != nil {
		return err
	}
	_, err := p.reply()
	return err
}

// Stop has the child close its streams and exit, and returns what they
// received.
func (p *SubscriberProcess) Stop() (StreamsResult, error) {
	defer p.kill()
	if _, err := io.WriteString(p.in, "stop\n"); err != nil {
		return StreamsResult{}, err
	}
	r, err := p.reply()
	if err != nil {
		return StreamsResult{}, err
	}
	if r.Result == nil {
		return StreamsResult{}, errors.New("loadtest: subscriber process sent no result")
	}
	return *r.Result, nil
}

func (p *SubscriberProcess) kill() {
	p.in.Close()
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// ServeSubscriberProcess is the child's side of StartSubscriberProcess: it
// reads a StreamsConfig from r, opens the streams, says so on w, then
// answers "received" and "stop" lines until stopped or r ends.
func ServeSubscriberProcess(ctx context.Context, r io.Reader, w io.Writer) error {
	in := bufio.NewReader(r)
	enc := json.NewEncoder(w)
	var cfg StreamsConfig
	line, err := in.ReadBytes('\n')
	if err != nil {
		return err
	}
	if err := json.Unmarshal(line, &cfg); err != nil {
		return enc.Encode(processReply{Error: "bad config: " + err.Error()})
	}
	s, err := OpenStreams(ctx, cfg)
	if err != nil {
		return enc.Encode(processReply{Error: err.Error()})
	}
	if err := enc.Encode(processReply{Ready: true}); err != nil {
		s.Stop()
		return err
	}
	for {
		cmd, err := in.ReadString('\n')
		switch {
		case err != nil:
			s.Stop()
			return nil
		case cmd == "received\n":
			if err := enc.Encode(processReply{Received: s.Received()}); err != nil {
				s.Stop()
				return err
			}
		case strings.HasPrefix(cmd, "measure "):
			ns, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(cmd, "measure ")), 10, 64)
			if err != nil {
				err = enc.Encode(processReply{Error: "bad measure command"})
			} else {
				s.Measure(time.Unix(0, ns))
				err = enc.Encode(processReply{})
			}
			if err != nil {
				s.Stop()
				return err
			}
		case cmd == "stop\n":
			res := s.Stop()
			return enc.Encode(processReply{Result: &res})
		}
	}
}
