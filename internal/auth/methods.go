package auth

import (
	"fmt"
	"sort"
	"strings"

	"google.golang.org/grpc"
)

// MethodsOf lists the full method names ("/pkg.Service/Method") of services,
// unary and streaming, for ParsePolicy and LoadPolicyFile, e.g.
// MethodsOf(&gatewayv1.PaymentsService_ServiceDesc, ...).
func MethodsOf(services ...*grpc.ServiceDesc) []string {
	var out []string
	for _, sd := range services {
		for _, m := range sd.Methods {
			out = append(out, "/"+sd.ServiceName+"/"+m.MethodName)
		}
		for _, s := range sd.Streams {
			out = append(out, "/"+sd.ServiceName+"/"+s.StreamName)
		}
	}
	sort.Strings(out)
	return out
}

// MethodsOfServer lists the full method names of every service registered
// on a server (grpc.Server.GetServiceInfo).
func MethodsOfServer(srv interface {
	GetServiceInfo() map[string]grpc.ServiceInfo
}) []string {
	var out []string
	for name, info := range srv.GetServiceInfo() {
		for _, m := range info.Methods {
			out = append(out, "/"+name+"/"+m.Name)
		}
	}
	sort.Strings(out)
	return out
}

// knownMethods is what method patterns are checked against.
type knownMethods struct {
	methods  map[string]bool // "pkg.Service/Method"
	services map[string]bool // "pkg.Service"
}

func newKnownMethods(fullMethods []string) (knownMethods, error) {
	k := knownMethods{methods: map[string]bool{}, services: map[string]bool{}}
	for _, m := range fullMethods {
		name := strings.TrimPrefix(m, "/")
		svc, method, ok := strings.Cut(name, "/")
		if !ok || svc == "" || method == "" || strings.ContainsAny(method, "/*") || strings.Contains(svc, "*") {
			return knownMethods{}, fmt.Errorf("auth: %q is not a full method name like /pkg.Service/Method", m)
		}
		k.methods[name] = true
		k.services[svc] = true
	}
	return k, nil
}

// methodName is a full method name without its leading slash, as policy
// patterns are written.
func methodName(fullMethod string) string { return strings.TrimPrefix(fullMethod, "/") }
