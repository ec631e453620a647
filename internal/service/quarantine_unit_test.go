package service

import (
	"context"
	"net"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Until caller authorization exists, the admin RPCs answer loopback callers
// only.
func TestLoopbackOnly(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr net.Addr
		ok   bool
	}{
		{"IPv4 loopback", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}, true},
		{"IPv6 loopback", &net.TCPAddr{IP: net.IPv6loopback, Port: 5000}, true},
		{"private network", &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 5000}, false},
		{"in memory (the REST face)", &net.UnixAddr{Name: "bufconn", Net: "bufconn"}, false},
		{"no peer", nil, false},
	} {
		ctx := context.Background()
		if tc.addr != nil {
			ctx = peer.NewContext(ctx, &peer.Peer{Addr: tc.addr})
		}
		err := LoopbackOnly(ctx)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if err != nil {
			st := status.Convert(err)
			var reason string
			for _, d := range st.Details() {
				if ei, ok := d.(*errdetails.ErrorInfo); ok {
					reason = ei.GetReason()
				}
			}
			if st.Code() != codes.PermissionDenied || reason != "ADMIN_LOOPBACK_ONLY" {
				t.Errorf("%s: %v (reason %q), want PERMISSION_DENIED ADMIN_LOOPBACK_ONLY", tc.name, err, reason)
			}
		}
	}
}

// FuzzQuarantinePageToken: any page token decodes without panic, and what
// decodes is a position that encodes back to the same token.
func FuzzQuarantinePageToken(f *testing.F) {
	f.Add("")
	f.Add(encodeQuarantinePage("12345"))
	f.Add("!!")
	f.Add("MTIzNDU")
	f.Fuzz(func(t *testing.T, token string) {
		pos, ok := decodeQuarantinePage(token)
		if !ok || token == "" {
			return
		}
		if again := encodeQuarantinePage(pos); again != token {
			t.Fatalf("%q -> %q -> %q", token, pos, again)
		}
	})
}
