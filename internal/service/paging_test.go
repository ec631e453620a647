package service_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/google/uuid"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
)

// TestPaging: five top-ups in pages of two are three pages, linked by
// opaque tokens, each knowing the total; "created_at desc" reverses them.
func TestPaging(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			g := servertest.Start(t)
			ag := uuid.NewString()
			var created []string
			for range 5 {
				var c gatewayv1.CreateTopupResponse
				checkOK(t, call(t, g, viaGRPC, createTopup(), &gatewayv1.CreateTopupRequest{RequestId: uuid.NewString(), AccountGroupId: ag, CashAmount: "1.00", Currency: "EUR"}, &c))
				created = append(created, c.GetTopup().GetId())
			}
			// Another account group's top-up must not show up.
			checkOK(t, call(t, g, viaGRPC, createTopup(), &gatewayv1.CreateTopupRequest{RequestId: uuid.NewString(), AccountGroupId: uuid.NewString(), CashAmount: "1.00", Currency: "EUR"}, &gatewayv1.CreateTopupResponse{}))

			readAll := func(orderBy string) (ids []string, sizes []int) {
				token := ""
				for page := 0; ; page++ {
					if page > 5 {
						t.Fatal("paging does not end")
					}
					var l gatewayv1.ListTopupsResponse
					checkOK(t, call(t, g, tr, listTopups(ag), &gatewayv1.ListTopupsRequest{AccountGroupId: ag, PageSize: 2, PageToken: token, OrderBy: orderBy}, &l))
					if l.GetTotalSize() != 5 {
						t.Errorf("page %d: total_size = %d, want 5", page, l.GetTotalSize())
					}
					for _, tp := range l.GetTopups() {
						ids = append(ids, tp.GetId())
					}
					sizes = append(sizes, len(l.GetTopups()))
					token = l.GetNextPageToken()
					if token == "" {
						return ids, sizes
					}
				}
			}

			asc, sizes := readAll("")
			if !slices.Equal(sizes, []int{2, 2, 1}) {
				t.Errorf("page sizes = %v, want [2 2 1]", sizes)
			}
			if !slices.Equal(asc, created) {
				t.Errorf("ascending pages = %v, want creation order %v", asc, created)
			}
			// The second page asked Upvest for offset 2.
			recs := simRequests(g, http.MethodGet, "/account_groups/"+ag+"/payments/topups")
			if len(recs) < 2 {
				t.Fatalf("upstream saw %d list requests", len(recs))
			}
			checkQuery(t, recs[1], url.Values{"limit": {"2"}, "offset": {"2"}, "sort": {"created_at"}, "order": {"ASC"}})

			desc, _ := readAll("created_at desc")
			slices.Reverse(desc)
			if !slices.Equal(desc, created) {
				t.Errorf("created_at desc pages reversed = %v, want %v", desc, created)
			}

			// page_size 0: the upstream's default page holds all five.
			var all gatewayv1.ListTopupsResponse
			checkOK(t, call(t, g, tr, listTopups(ag), &gatewayv1.ListTopupsRequest{AccountGroupId: ag}, &all))
			if len(all.GetTopups()) != 5 || all.GetNextPageToken() != "" {
				t.Errorf("default page: %d top-ups, next %q; want 5 and no next page", len(all.GetTopups()), all.GetNextPageToken())
			}
		})
	}
}
