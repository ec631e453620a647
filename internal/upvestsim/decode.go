package upvestsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"regexp"
	"slices"
	"strings"
)

// supportedCurrencies is the currency set of this API version. It is data,
// not logic: later versions add GBP by adding it here.
var supportedCurrencies = []string{"EUR"}

// defaultCurrency is what resources without a currency field in their
// request (direct debits, withdrawals) are booked in.
var defaultCurrency = supportedCurrencies[0]

var remittancePattern = regexp.MustCompile(`^[0-9A-Za-z+?/\-:()\.,'; ]{0,140}$`)

// decodeJSON decodes a request body the way the upstream's schemas demand:
// application/json, one object, no unknown fields (additionalProperties:
// false), nothing after it.
func decodeJSON(contentType string, body []byte, dst any) *problem {
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("a JSON request body is required")
	}
	if mt, _, err := mime.ParseMediaType(contentType); err != nil || mt != "application/json" {
		return badRequest("content-type must be application/json")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeProblem(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("unexpected data after the JSON object")
	}
	return nil
}

// decodeProblem names the offending field of a decoding error where the
// decoder tells it.
func decodeProblem(err error) *problem {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return badRequest("field %s: JSON %s where %s was expected", typeErr.Field, typeErr.Value, jsonKind(typeErr.Type.Kind().String()))
	case errors.As(err, &typeErr):
		return badRequest("the request body must be a JSON object")
	case errors.As(err, &syntaxErr):
		return badRequest("malformed JSON at offset %d", syntaxErr.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("truncated JSON body")
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return badRequest("unknown field %s", name)
	}
	return badRequest("malformed JSON body: %v", err)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	return "a number"
}

// fields validates decoded request fields one by one, collecting every
// violation so the detail names all offending fields at once.
type fields struct{ errs []string }

func (f *fields) fail(name, format string, args ...any) {
	f.errs = append(f.errs, name+": "+fmt.Sprintf(format, args...))
}

func (f *fields) problem() *problem {
	if len(f.errs) == 0 {
		return nil
	}
	return badRequest("%s", strings.Join(f.errs, "; "))
}

// present reports whether an optional field is set, failing a required one
// that is not.
func (f *fields) present(name string, v *string, required bool) bool {
	if v == nil {
		if required {
			f.fail(name, "is required")
		}
		return false
	}
	return true
}

// uuid checks a UUID field and lowercases it: upstream stores UUIDs, not
// their spelling, so ids differing in case name the same thing.
func (f *fields) uuid(name string, v *string) {
	if !f.present(name, v, true) {
		return
	}
	if !uuidPattern.MatchString(*v) {
		f.fail(name, "%q is not a UUID", *v)
		return
	}
	*v = strings.ToLower(*v)
}

func (f *fields) amount(name string, v *string) {
	if !f.present(name, v, true) {
		return
	}
	if !amountPattern.MatchString(*v) {
		f.fail(name, "%q does not match %s", *v, amountPattern)
	} else if mustAmount(*v).Sign() == 0 {
		f.fail(name, "must be greater than zero")
	}
}

func (f *fields) currency(name string, v *string) {
	if f.present(name, v, true) && !isSupportedCurrency(*v) {
		f.fail(name, "%q is not supported (supported: %s)", *v, strings.Join(supportedCurrencies, ", "))
	}
}

func (f *fields) remittance(name string, v *string) {
	if f.present(name, v, false) && !remittancePattern.MatchString(*v) {
		f.fail(name, "does not match %s", remittancePattern)
	}
}

func isSupportedCurrency(c string) bool { return slices.Contains(supportedCurrencies, c) }

func deref(v *string) string {
	if v == nil {
		return ""
	}
	return *v
}

// checker is a request body type that validates its decoded fields.
type checker[T any] interface {
	*T
	check(f *fields)
}

// decodeRequest decodes a JSON request body into T and validates it: every
// body goes through the same strict decoding and field checks.
func decodeRequest[T any, PT checker[T]](contentType string, body []byte) (T, *problem) {
	var req T
	if p := decodeJSON(contentType, body, &req); p != nil {
		return req, p
	}
	var f fields
	PT(&req).check(&f)
	return req, f.problem()
}

// virtualCashRequest is the body of POST /virtual_cash_balances/{increases,decreases}.
type virtualCashRequest struct {
	AccountGroupID *string `json:"account_group_id"`
	Amount         *string `json:"amount"`
	Currency       *string `json:"currency"`
}

func (r *virtualCashRequest) check(f *fields) {
	f.uuid("account_group_id", r.AccountGroupID)
	f.amount("amount", r.Amount)
	f.currency("currency", r.Currency)
}

// topupRequest is the body of POST /payments/topups.
type topupRequest struct {
	AccountGroupID *string `json:"account_group_id"`
	CashAmount     *string `json:"cash_amount"`
	Currency       *string `json:"currency"`
}

func (r *topupRequest) check(f *fields) {
	f.uuid("account_group_id", r.AccountGroupID)
	f.amount("cash_amount", r.CashAmount)
	f.currency("currency", r.Currency)
}

// directDebitRequest is the body of POST /payments/direct_debits.
type directDebitRequest struct {
	UserID                *string `json:"user_id"`
	AccountGroupID        *string `json:"account_group_id"`
	MandateID             *string `json:"mandate_id"`
	CashAmount            *string `json:"cash_amount"`
	RemittanceInformation *string `json:"remittance_information"`
}

func (r *directDebitRequest) check(f *fields) {
	f.uuid("user_id", r.UserID)
	f.uuid("account_group_id", r.AccountGroupID)
	f.uuid("mandate_id", r.MandateID)
	f.amount("cash_amount", r.CashAmount)
	f.remittance("remittance_information", r.RemittanceInformation)
}

// withdrawalRequest is the body of POST /payments/withdrawals.
type withdrawalRequest struct {
	ReferenceAccountID    *string `json:"reference_account_id"`
	AccountGroupID        *string `json:"account_group_id"`
	UserID                *string `json:"user_id"`
	Amount                *string `json:"amount"`
	RemittanceInformation *string `json:"remittance_information"`
}

func (r *withdrawalRequest) check(f *fields) {
	f.uuid("reference_account_id", r.ReferenceAccountID)
	f.uuid("account_group_id", r.AccountGroupID)
	f.uuid("user_id", r.UserID)
	f.amount("amount", r.Amount)
	f.remittance("remittance_information", r.RemittanceInformation)
}
