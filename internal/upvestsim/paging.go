package upvestsim

import (
	"math"
	"net/url"
	"slices"
	"strconv"
)

// Paging defaults and bounds of the upstream list operations.
const (
	defaultLimit = 100
	maxLimit     = 1000
)

// listParams are the parsed sort, order, limit and offset of a list call.
type listParams struct {
	sort, order   string
	limit, offset int
}

// parseListParams parses a list query strictly: only the four paging
// parameters, each at most once, within the upstream bounds. An empty value
// means the default (allowEmptyValue in the API description).
func parseListParams(rawQuery string, sorts []string) (listParams, *problem) {
	p := listParams{sort: "created_at", order: "ASC", limit: defaultLimit}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return p, badRequest("malformed query string")
	}
	for name, vs := range q {
		if len(vs) != 1 {
			return p, badRequest("query parameter %s given %d times", name, len(vs))
		}
		v := vs[0]
		switch name {
		case "sort":
			if v == "" {
				continue
			}
			if !slices.Contains(sorts, v) {
				return p, badRequest("sort: %q is not one of %v", v, sorts)
			}
			p.sort = v
		case "order":
			if v == "" {
				continue
			}
			if v != "ASC" && v != "DESC" {
				return p, badRequest("order: %q is not ASC or DESC", v)
			}
			p.order = v
		case "limit":
			if v == "" {
				continue
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > maxLimit {
				return p, badRequest("limit: %q is not an integer in 0..%d", v, maxLimit)
			}
			p.limit = n
		case "offset":
			if v == "" {
				continue
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > math.MaxInt32 {
				return p, badRequest("offset: %q is not an integer in 0..%d", v, math.MaxInt32)
			}
			p.offset = n
		default:
			return p, badRequest("unknown query parameter %q", name)
		}
	}
	return p, nil
}

type listMeta struct {
	Offset     int    `json:"offset"`
	Limit      int    `json:"limit"`
	Count      int    `json:"count"`
	TotalCount int    `json:"total_count"`
	Sort       string `json:"sort"`
	Order      string `json:"order"`
}

type listJSON[T any] struct {
	Meta listMeta `json:"meta"`
	Data []T      `json:"data"`
}

// sortKeys compares two items by one sort field.
type sortKeys[T any] map[string]func(a, b T) int

// paginate sorts items (given in creation order, which breaks ties) and cuts
// out the requested page.
func paginate[T any](items []T, p listParams, keys sortKeys[T]) listJSON[T] {
	sorted := slices.Clone(items)
	less := keys[p.sort]
	if p.order == "DESC" {
		asc := less
		less = func(a, b T) int { return asc(b, a) }
	}
	slices.SortStableFunc(sorted, less)
	start := min(p.offset, len(sorted))
	end := min(start+p.limit, len(sorted))
	data := sorted[start:end]
	if data == nil {
		data = []T{}
	}
	return listJSON[T]{
		Meta: listMeta{Offset: p.offset, Limit: p.limit, Count: len(data), TotalCount: len(items), Sort: p.sort, Order: p.order},
		Data: data,
	}
}
