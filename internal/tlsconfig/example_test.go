package tlsconfig_test

import (
	"log"
	"net"
	"net/http"

	"google.golang.org/grpc"

	"github.com/upvest-gateway/gateway/internal/tlsconfig"
)

// The gRPC listener requires client certificates; the HTTP listener verifies
// one when presented (REST callers) and serves webhooks and probes without.
func Example() {
	tlsServer, err := tlsconfig.New("/etc/gateway/tls.crt", "/etc/gateway/tls.key",
		tlsconfig.WithClientCAFile("/etc/gateway/clients-ca.pem"))
	if err != nil {
		log.Fatal(err) // names the file and the cause
	}
	grpcServer := grpc.NewServer(grpc.Creds(tlsServer.GRPCCredentials()))
	httpServer := &http.Server{TLSConfig: tlsServer.HTTP()}

	grpcLis, _ := net.Listen("tcp", "127.0.0.1:9090")
	httpLis, _ := net.Listen("tcp", "127.0.0.1:8080")
	go func() { _ = grpcServer.Serve(grpcLis) }()
	_ = httpServer.ServeTLS(httpLis, "", "") // the certificate comes from the config
}
