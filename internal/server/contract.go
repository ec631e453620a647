package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"google.golang.org/grpc/codes"
)

// The REST face's routes as its OpenAPI description (gen/openapi) states
// them: the description is the contract, so the gateway serves what it
// says and refuses what it does not, such as a query parameter no call
// takes (grpc-gateway would ignore it: ?page_sise=2 would list everything).

// contractRoute is one operation of the description.
type contractRoute struct {
	method, path string
	query        []string // the query parameters it takes, sorted
}

// contractRoutes reads the operations of an OpenAPI 3 description.
func contractRoutes(doc []byte) ([]contractRoute, error) {
	var d struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name string `json:"name"`
				In   string `json:"in"`
			} `json:"parameters"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("server: the OpenAPI description: %w", err)
	}
	var routes []contractRoute
	for path, ops := range d.Paths {
		for method, op := range ops {
			r := contractRoute{method: strings.ToUpper(method), path: path}
			for _, p := range op.Parameters {
				if p.In == "query" {
					r.query = append(r.query, p.Name)
				}
			}
			sort.Strings(r.query)
			routes = append(routes, r)
		}
	}
	sort.Slice(routes, func(i, j int) bool { return routes[i].path+routes[i].method < routes[j].path+routes[j].method })
	return routes, nil
}

// restHandler routes /v1/ by the description: the streams to their
// handlers (stream.go), every other operation to grpc-gateway, each behind
// a check of its query parameters. What the description does not have
// goes to grpc-gateway, which answers 404 or 405.
func (s *Server) restHandler(doc []byte, rest http.Handler) (http.Handler, error) {
	routes, err := contractRoutes(doc)
	if err != nil {
		return nil, err
	}
	streams := make(map[string]watchRoute, len(watchRoutes))
	for _, rt := range watchRoutes {
		streams[rt.path] = rt
	}
	mux := http.NewServeMux()
	for _, r := range routes {
		h := rest
		if rt, ok := streams[r.path]; ok && r.method == http.MethodGet {
			h = s.watchHandler(rt)
			delete(streams, r.path)
		}
		mux.Handle(r.method+" "+r.path, strictQuery(r.query, h))
	}
	for path := range streams {
		return nil, fmt.Errorf("server: stream %s is not in the OpenAPI description", path)
	}
	mux.Handle("/", rest)
	return mux, nil
}

// strictQuery refuses a request with a query parameter not in known.
func strictQuery(known []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != "" {
			q, err := url.ParseQuery(r.URL.RawQuery)
			if err != nil {
				writeProblem(w, http.StatusBadRequest, gatewayStatus(codes.InvalidArgument, ReasonMalformedQuery, "malformed query string: "+err.Error()))
				return
			}
			var unknown []string
			for name := range q {
				if !slices.Contains(known, name) {
					unknown = append(unknown, name)
				}
			}
			if len(unknown) > 0 {
				sort.Strings(unknown)
				writeProblem(w, http.StatusBadRequest, unknownQueryStatus(unknown, known))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
