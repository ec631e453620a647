package auth

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

type grantKey struct{}

func withGrant(ctx context.Context, g *Grant) context.Context {
	return context.WithValue(ctx, grantKey{}, g)
}

// accountGroupRequest is every request that names an account group.
type accountGroupRequest interface{ GetAccountGroupId() string }

// CheckAccountGroup is for the services: after reading a resource that a
// request names only by its id (Get, Cancel), and before acting on it or
// returning it, it checks that the caller may use the resource's account
// group. It returns nil or PERMISSION_DENIED (ACCOUNT_GROUP_NOT_ALLOWED)
// naming the method, not the account group. A context the interceptors have
// not seen (no Guard installed) is unrestricted.
//
// A service may prefer to answer NOT_FOUND instead, so that a restricted
// caller cannot learn which ids exist in other account groups.
func CheckAccountGroup(ctx context.Context, accountGroupID string) error {
	g, ok := ctx.Value(grantKey{}).(*Grant)
	if !ok {
		return nil
	}
	method, _ := grpc.Method(ctx)
	return checkAccountGroup(g, method, accountGroupID)
}

// Restricted reports whether the caller may use only some account groups,
// e.g. to refuse a listing across all of them.
func Restricted(ctx context.Context) bool {
	g, ok := ctx.Value(grantKey{}).(*Grant)
	return ok && g.Restricted()
}

// checkMessage checks the account group of a request that names one; a
// message that names none is left to the service (CheckAccountGroup).
func checkMessage(g *Grant, method string, msg any) error {
	if r, ok := msg.(accountGroupRequest); ok && g.Restricted() {
		return checkAccountGroup(g, method, r.GetAccountGroupId())
	}
	return nil
}

func checkAccountGroup(g *Grant, method, id string) error {
	if g.AllowsAccountGroup(id) {
		return nil
	}
	meta := map[string]string{"method": method}
	if id == "" {
		// Only a caller granted any account group may watch or list them all.
		return refusal(codes.PermissionDenied, ReasonAccountGroupRequired,
			fmt.Sprintf("%s: this caller may use only some account groups and must name one (account_group_id)", method), meta)
	}
	return refusal(codes.PermissionDenied, ReasonAccountGroupNotAllowed,
		fmt.Sprintf("%s: this caller may not use the account group of this request", method), meta)
}
