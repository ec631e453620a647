package service

import (
	"regexp"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The upstream's value formats (Upvest Investment API). Checking them here
// means a malformed request is refused with every problem named at once,
// instead of one upstream 400 per round trip.
var (
	uuidPattern       = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	amountPattern     = regexp.MustCompile(`^[0-9]{1,9}(\.[0-9]{2})?$`)
	remittancePattern = regexp.MustCompile(`^[0-9A-Za-z+?/\-:()\.,'; ]{0,140}$`)
)

// maxPageSize is the upstream's largest page (limit 0..1000).
const maxPageSize = 1000

// validator collects every field violation of one request, so the caller
// learns all of them from one INVALID_ARGUMENT.
type validator struct {
	opts       *options
	violations []*errdetails.BadRequest_FieldViolation
}

func (c *backend) validator() *validator { return &validator{opts: &c.opts} }

// add records a violation of field (a proto field name).
func (v *validator) add(field, description string) {
	v.violations = append(v.violations, &errdetails.BadRequest_FieldViolation{
		Field:       field,
		Description: description,
	})
}

// ReasonInvalidArgument is the ErrorInfo reason, under GatewayErrorDomain,
// of a request the gateway's own checks refused.
const ReasonInvalidArgument = "INVALID_ARGUMENT"

// err is nil when no violation was recorded, else one INVALID_ARGUMENT
// status carrying a google.rpc.BadRequest with all of them, and ErrorInfo
// saying it is the gateway's refusal, not Upvest's.
func (v *validator) err() error {
	if len(v.violations) == 0 {
		return nil
	}
	fields := make([]string, len(v.violations))
	for i, fv := range v.violations {
		fields[i] = fv.GetField()
	}
	st := status.New(codes.InvalidArgument, "invalid request: check "+strings.Join(uniq(fields), ", "))
	if d, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: v.violations},
		&errdetails.ErrorInfo{Reason: ReasonInvalidArgument, Domain: GatewayErrorDomain}); err == nil {
		st = d
	}
	return st.Err()
}

// id checks a required resource id: a UUID, 8-4-4-4-12 hex digits.
func (v *validator) id(field, value string) {
	switch {
	case value == "":
		v.add(field, "is required")
	case !uuidPattern.MatchString(value):
		v.add(field, "must be a UUID (8-4-4-4-12 hexadecimal digits)")
	}
}

// amount checks a required money amount: a decimal string, never a float.
func (v *validator) amount(field, value string) {
	switch {
	case value == "":
		v.add(field, `is required`)
	case !amountPattern.MatchString(value):
		v.add(field, `must be a decimal string of 1 to 9 digits, optionally followed by "." and exactly 2 digits, e.g. "200.00"`)
	}
}

// remittance checks an optional payment reference.
func (v *validator) remittance(field, value string) {
	if !remittancePattern.MatchString(value) {
		v.add(field, `must be at most 140 characters of A-Z a-z 0-9 space and + ? / - : ( ) . , ' ;`)
	}
}

// currency checks a required currency against the configured set.
func (v *validator) currency(field, value string) {
	switch {
	case value == "":
		v.add(field, "is required")
	case !v.opts.currencies[value]:
		v.add(field, "must be one of: "+v.opts.currencyList)
	}
}

// pageSize checks page_size against the upstream's limit range.
func (v *validator) pageSize(field string, n int32) {
	if n < 0 || n > maxPageSize {
		v.add(field, "must be between 0 and 1000 (0: the default of 100)")
	}
}

// orderBy parses order_by ("created_at", "id", each optionally followed by
// " asc" or " desc", case-insensitive) into the upstream sort and order. An
// empty order_by is the documented default, created_at ascending; it is sent
// explicitly so the answer does not depend on the upstream's default.
func (v *validator) orderBy(field, value string) (sort, order string) {
	words := strings.Fields(strings.ToLower(value))
	sort, order = "created_at", "ASC"
	if len(words) == 0 {
		return sort, order
	}
	ok := len(words) <= 2
	if ok {
		switch words[0] {
		case "created_at", "id":
			sort = words[0]
		default:
			ok = false
		}
	}
	if ok && len(words) == 2 {
		switch words[1] {
		case "asc":
		case "desc":
			order = "DESC"
		default:
			ok = false
		}
	}
	if !ok {
		v.add(field, `must be "created_at" or "id", optionally followed by " asc" or " desc"`)
	}
	return sort, order
}

func uniq(s []string) []string {
	out := s[:0:0]
	seen := make(map[string]bool, len(s))
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
