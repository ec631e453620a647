package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	adminv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/admin/v1"
)

// The operator's commands for the event log's quarantine:
//
//	gateway events quarantine list                       # what is quarantined, oldest first
//	gateway events quarantine show ID                    # one record and its raw bytes
//	gateway events quarantine reinject ID                # append its event as received
//	gateway events quarantine reinject ID --event-file F # ... or a corrected one (- for stdin)
//
// They call the running gateway's EventQuarantineService over gRPC (the
// embedded NATS and its data directory belong to the gateway process), at
// GATEWAY_GRPC_ADDR or --grpc-addr, on loopback when it listens on every
// interface: until caller authorization exists the service answers loopback
// callers only, so these run on the gateway's host (e.g. kubectl exec).

const eventsUsage = `Usage:
  gateway events quarantine list [--grpc-addr ADDR] [--page-size N]
  gateway events quarantine show ID [--grpc-addr ADDR]
  gateway events quarantine reinject ID [--event-file FILE|-] [--grpc-addr ADDR]

Lists the webhook events the running gateway could not put in its event log,
shows one with its raw bytes, or appends one to the log after a fix: as
received (once the gateway has learnt to read it), or corrected (--event-file,
the JSON of one event). Re-injecting twice streams the event once.

A gateway whose callers are authenticated needs the operator's credentials,
over TLS: --ca-file (to trust the gateway) and --cert-file with --key-file
(mutual TLS) or --token-file (a bearer token); the policy must grant the
identity upvest.gateway.admin.v1.EventQuarantineService/*.
`

// adminTimeout bounds one command.
const adminTimeout = 30 * time.Second

// maxEventFile bounds a corrected event read from a file.
const maxEventFile = 4 << 20

// runEvents runs `gateway events ...`.
func runEvents(ctx context.Context, args []string, env map[string]string, stdin io.Reader, stdout, stderr io.Writer) int {
	usage := func(msg string) int {
		if msg != "" {
			fmt.Fprintf(stderr, "gateway events: %s\n", msg)
		}
		fmt.Fprint(stderr, eventsUsage)
		return exitConfig
	}
	if len(args) < 2 || args[0] != "quarantine" {
		if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprint(stdout, eventsUsage)
			return exitOK
		}
		return usage("")
	}
	cmd := args[1]
	fs := flag.NewFlagSet("gateway events quarantine "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := env["GATEWAY_GRPC_ADDR"]
	if addr == "" {
		addr = settingOf("GATEWAY_GRPC_ADDR").def
	}
	fs.StringVar(&addr, "grpc-addr", addr, "the running gateway's gRPC address [GATEWAY_GRPC_ADDR]")
	pageSize := fs.Int("page-size", 100, "records per request (list)")
	caFile := fs.String("ca-file", "", "PEM bundle to trust the gateway's TLS certificate with (the gateway serves TLS)")
	certFile := fs.String("cert-file", "", "PEM client certificate that identifies the operator (mutual TLS), with --key-file")
	keyFile := fs.String("key-file", "", "PEM private key of --cert-file")
	tokenFile := fs.String("token-file", "", "file holding a bearer token that identifies the operator")
	eventFile := fs.String("event-file", "", "a corrected event to re-inject instead of the raw bytes (- for stdin)")
	// The id may come before or after the flags.
	var positional []string
	rest := args[2:]
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, eventsUsage)
				return exitOK
			}
			return usage(strings.Replace(err.Error(), "provided but not defined: -", "provided but not defined: --", 1))
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if err := checkAddr("GATEWAY_GRPC_ADDR", addr); err != nil {
		return usage(err.Error())
	}

	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	dialOpts, err := operatorCredentials(*caFile, *certFile, *keyFile, *tokenFile)
	if err != nil {
		return usage(err.Error())
	}
	conn, err := grpc.NewClient("passthrough:///"+dialAddr(addr),
		append(dialOpts, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))...)
	if err != nil {
		fmt.Fprintf(stderr, "gateway events: %v\n", err)
		return exitFailure
	}
	defer conn.Close()
	admin := adminv1.NewEventQuarantineServiceClient(conn)

	switch {
	case cmd == "list" && len(positional) == 0:
		err = listQuarantine(ctx, admin, int32(*pageSize), stdout)
	case cmd == "show" && len(positional) == 1:
		err = showQuarantined(ctx, admin, positional[0], stdout)
	case cmd == "reinject" && len(positional) == 1:
		var event []byte
		if event, err = readEventFile(*eventFile, stdin); err != nil {
			return usage(err.Error())
		}
		err = reinject(ctx, admin, positional[0], event, stdout)
	default:
		return usage(fmt.Sprintf("%q with %d argument(s) is not a quarantine command", cmd, len(positional)))
	}
	if err != nil {
		fmt.Fprintf(stderr, "gateway events quarantine %s: %s\n", cmd, describe(err))
		return exitFailure
	}
	return exitOK
}

// dialAddr is where to reach a gateway listening on addr from its own
// host: loopback when it listens on every interface.
func dialAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func readEventFile(name string, stdin io.Reader) ([]byte, error) {
	var r io.Reader
	switch name {
	case "":
		return nil, nil
	case "-":
		r = stdin
	default:
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("--event-file: %v", errors.Unwrap(err))
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxEventFile+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("--event-file: %v", err)
	case len(b) > maxEventFile:
		return nil, errors.New("--event-file: larger than 4MiB")
	case len(strings.TrimSpace(string(b))) == 0:
		return nil, errors.New("--event-file: empty")
	}
	return b, nil
}

func listQuarantine(ctx context.Context, admin adminv1.EventQuarantineServiceClient, pageSize int32, out io.Writer) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRECEIVED\tINDEX\tTYPE\tEVENT ID\tBYTES\tREINJECTED\tREASON")
	token := ""
	for {
		resp, err := admin.ListQuarantinedEvents(ctx, &adminv1.ListQuarantinedEventsRequest{PageSize: pageSize, PageToken: token})
		if err != nil {
			return err
		}
		for _, r := range resp.GetQuarantinedEvents() {
			reinjected := "-"
			if r.GetReinjectedAt() != nil {
				reinjected = r.GetReinjectedAt().AsTime().UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%s\t%s\n", r.GetId(), r.GetReceivedAt().AsTime().UTC().Format(time.RFC3339),
				r.GetPayloadIndex(), orDash(printableText(r.GetEventType())), orDash(printableText(r.GetEventId())), r.GetSize(), reinjected,
				printableText(r.GetReason()))
		}
		if token = resp.GetNextPageToken(); token == "" {
			return tw.Flush()
		}
	}
}

func showQuarantined(ctx context.Context, admin adminv1.EventQuarantineServiceClient, id string, out io.Writer) error {
	resp, err := admin.GetQuarantinedEvent(ctx, &adminv1.GetQuarantinedEventRequest{Id: id})
	if err != nil {
		return err
	}
	r := resp.GetQuarantinedEvent()
	fmt.Fprintf(out, "id:          %s\nreceived:    %s\nreason:      %s\npayload:     index %d\nevent:       %s %s\nwebhook:     %s\nkey id:      %s\nbytes:       %d (sha256 %s)\n",
		r.GetId(), r.GetReceivedAt().AsTime().UTC().Format(time.RFC3339Nano), printableText(r.GetReason()), r.GetPayloadIndex(),
		orDash(printableText(r.GetEventType())), orDash(printableText(r.GetEventId())), orDash(r.GetWebhookId()), orDash(printableText(r.GetKeyId())),
		r.GetSize(), r.GetSha256())
	if r.GetReinjectedAt() != nil {
		fmt.Fprintf(out, "reinjected:  %s as event %s\n", r.GetReinjectedAt().AsTime().UTC().Format(time.RFC3339Nano), r.GetReinjectedEventId())
	}
	fmt.Fprintf(out, "raw:\n%s\n", r.GetRaw())
	return nil
}

func reinject(ctx context.Context, admin adminv1.EventQuarantineServiceClient, id string, event []byte, out io.Writer) error {
	resp, err := admin.ReinjectQuarantinedEvent(ctx, &adminv1.ReinjectQuarantinedEventRequest{Id: id, Event: event})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "re-injected %s as event %s (%s)\n", id, resp.GetEventId(), resp.GetEventType())
	return nil
}

// describe is a gRPC error as one line: the status and its field
// violations.
func describe(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	msg := st.Code().String() + ": " + st.Message()
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if !strings.Contains(msg, v.GetField()) {
					msg += "; " + v.GetField() + ": " + v.GetDescription()
				}
			}
		}
	}
	return printableText(msg)
}

// printableText keeps sender-controlled text from moving the terminal.
func printableText(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// operatorCredentials are how the command proves itself to a gateway whose
// callers must: TLS trusting caFile, a client certificate, a bearer token
// (sent only over TLS). None of them: a plain connection, for a gateway on
// loopback without caller authentication.
func operatorCredentials(caFile, certFile, keyFile, tokenFile string) ([]grpc.DialOption, error) {
	if caFile == "" {
		if certFile != "" || tokenFile != "" {
			return nil, errors.New("--cert-file and --token-file need --ca-file: credentials travel over TLS only")
		}
		return []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, nil
	}
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--ca-file %q cannot be read", caFile)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("--ca-file %q holds no PEM certificate", caFile)
	}
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("--cert-file and --key-file go together")
	}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("--cert-file and --key-file are not a usable pair")
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(cfg))}
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--token-file %q cannot be read", tokenFile)
		}
		token := strings.TrimSpace(string(b))
		clear(b)
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(token)))
	}
	return opts, nil
}

// bearer sends a bearer token with every call, over TLS only.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return true }
