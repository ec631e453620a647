package tlsconfig

import (
	"net"

	"google.golang.org/grpc/credentials"
)

// inMemoryNetwork is the network of google.golang.org/grpc/test/bufconn
// connections: the gateway's REST face reaches its own gRPC server over one.
const inMemoryNetwork = "bufconn"

// GRPCCredentials are the gRPC server's transport credentials: TLS with
// GRPC() on network connections, and none on the in-memory connection of
// the REST face (a grpc.Server has one set of credentials for all its
// listeners, and that connection never leaves the process; the REST face's
// HTTP listener has done TLS with the REST client already).
func (s *Server) GRPCCredentials() credentials.TransportCredentials {
	return inMemoryExempt{credentials.NewTLS(s.GRPC())}
}

type inMemoryExempt struct {
	credentials.TransportCredentials
}

func (c inMemoryExempt) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if conn.RemoteAddr().Network() == inMemoryNetwork {
		return conn, inMemoryInfo{credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}, nil
	}
	return c.TransportCredentials.ServerHandshake(conn)
}

func (c inMemoryExempt) Clone() credentials.TransportCredentials {
	return inMemoryExempt{c.TransportCredentials.Clone()}
}

// inMemoryInfo is the AuthInfo of an in-memory connection.
type inMemoryInfo struct{ credentials.CommonAuthInfo }

func (inMemoryInfo) AuthType() string { return "in-memory" }
