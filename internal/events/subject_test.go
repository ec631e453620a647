package events

import (
	"errors"
	"slices"
	"testing"
)

func TestFilterSubjects(t *testing.T) {
	const ag = "2a761567-251b-450e-8615-025d61dcc95e"
	tests := []struct {
		name string
		f    Filter
		want []string
	}{
		{"all", Filter{}, []string{"p.*.*.*"}},
		{"account group", Filter{AccountGroupID: "2A761567-251B-450E-8615-025D61DCC95E"}, []string{"p.*.*." + ag}},
		{"families", Filter{Families: []string{FamilyWithdrawal, FamilyDirectDebit, FamilyWithdrawal}}, []string{"p.direct_debit.*.*", "p.withdrawal.*.*"}},
		{"types", Filter{Types: []string{"TOPUP.SETTLED", "CASH_BALANCE.UPDATED", "TOPUP.SETTLED"}, AccountGroupID: ag},
			[]string{"p.cash_balance.updated." + ag, "p.topup.settled." + ag}},
		{"type covered by family", Filter{Types: []string{"TOPUP.SETTLED", "WITHDRAWAL.NEW"}, Families: []string{FamilyTopup}},
			[]string{"p.topup.*.*", "p.withdrawal.new.*"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.f.Subjects("p")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Subjects = %q, want %q", got, tt.want)
			}
		})
	}
	for name, f := range map[string]Filter{
		"family":        {Families: []string{"ORDER"}},
		"type":          {Types: []string{"TOPUP"}},
		"type family":   {Types: []string{"ORDER.FILLED"}},
		"type wildcard": {Types: []string{"TOPUP.*"}},
		"account group": {AccountGroupID: "x.>"},
	} {
		if _, err := f.Subjects("p"); !errors.Is(err, ErrInvalidFilter) {
			t.Errorf("%s: err = %v, want ErrInvalidFilter", name, err)
		}
	}
}

func TestWiden(t *testing.T) {
	for _, tt := range []struct {
		in   []string
		want string
	}{
		{[]string{"p.q.topup.*.*"}, "p.q.topup.*.*"},
		{[]string{"p.direct_debit.*.A", "p.withdrawal.*.A"}, "p.*.*.A"},
		{[]string{"p.topup.settled.*", "p.topup.cancelled.*"}, "p.topup.*.*"},
	} {
		if got := widen(tt.in); got != tt.want {
			t.Errorf("widen(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSubjectMatches(t *testing.T) {
	for _, tt := range []struct {
		pattern, subject string
		want             bool
	}{
		{"a.b.c", "a.b.c", true},
		{"a.*.c", "a.b.c", true},
		{"a.*", "a.b.c", false},
		{"a.>", "a.b.c", true},
		{"a.>", "a", false},
		{"a.b.c", "a.b", false},
		{"a.b", "a.b.c", false},
		{"*.*.*", "a.b.c", true},
		{"a.b.d", "a.b.c", false},
	} {
		if got := subjectMatches(tt.pattern, tt.subject); got != tt.want {
			t.Errorf("subjectMatches(%q, %q) = %v", tt.pattern, tt.subject, got)
		}
	}
}
