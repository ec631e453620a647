package upvestsim

import (
	"fmt"
	"math/big"
	"regexp"
	"strings"
)

// decimalScale is the number of fraction digits a balance may carry
// (^-?[0-9]{0,63}(\.[0-9]{1,27})?$). Holding every value as an integer count
// of 10^-27 units makes sums exact and rendering lossless: money is never a
// float here.
const decimalScale = 27

var (
	amountPattern  = regexp.MustCompile(`^[0-9]{1,9}(\.[0-9]{2})?$`)
	balancePattern = regexp.MustCompile(`^-?[0-9]{0,63}(\.[0-9]{1,27})?$`)
)

// parseDecimal turns a decimal string that already matched one of the
// upstream patterns into 10^-27 units. It rejects the pattern's degenerate
// matches ("", "-", ".") that carry no digit.
func parseDecimal(s string) (*big.Int, error) {
	neg := strings.HasPrefix(s, "-")
	digits := strings.TrimPrefix(s, "-")
	intPart, frac, _ := strings.Cut(digits, ".")
	if intPart == "" && frac == "" {
		return nil, fmt.Errorf("%q has no digits", s)
	}
	if len(frac) > decimalScale {
		return nil, fmt.Errorf("%q has more than %d fraction digits", s, decimalScale)
	}
	for _, c := range intPart + frac {
		if c < '0' || c > '9' {
			return nil, fmt.Errorf("%q is not a decimal number", s)
		}
	}
	v, ok := new(big.Int).SetString("0"+intPart+frac+strings.Repeat("0", decimalScale-len(frac)), 10)
	if !ok {
		return nil, fmt.Errorf("%q is not a decimal number", s)
	}
	if neg {
		v.Neg(v)
	}
	return v, nil
}

// formatDecimal renders 10^-27 units the way Upvest renders balances: no
// trailing fraction zeros, no fraction at all for whole numbers ("80"), and
// never "-0".
func formatDecimal(v *big.Int) string {
	digits := new(big.Int).Abs(v).String()
	if len(digits) <= decimalScale {
		digits = strings.Repeat("0", decimalScale-len(digits)+1) + digits
	}
	intPart, frac := digits[:len(digits)-decimalScale], strings.TrimRight(digits[len(digits)-decimalScale:], "0")
	out := intPart
	if frac != "" {
		out += "." + frac
	}
	if v.Sign() < 0 {
		out = "-" + out
	}
	return out
}

// mustAmount parses an amount the request decoder has already validated.
func mustAmount(s string) *big.Int {
	v, err := parseDecimal(s)
	if err != nil {
		panic("upvestsim: unvalidated amount " + s)
	}
	return v
}
