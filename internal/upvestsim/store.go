package upvestsim

import (
	"cmp"
	"net/http"
	"time"
)

// store keeps one kind of resource by id and in creation order (which lists
// use to break sort ties); it is guarded by Sim.mu.
type store[R any] struct {
	byID map[string]R
	all  []R
}

func (st *store[R]) add(id string, r R) {
	if st.byID == nil {
		st.byID = map[string]R{}
	}
	st.byID[id] = r
	st.all = append(st.all, r)
}

func (st *store[R]) get(id string) (R, bool) {
	r, ok := st.byID[id]
	return r, ok
}

// paymentJSON is the wire form of a listable payment (top-up, direct debit,
// withdrawal): what the list operations filter and sort on.
type paymentJSON interface {
	listKey() (id, accountGroupID string, createdAt time.Time)
}

// listPayments answers a payment list call of c's account group; s.mu must
// be held.
func listPayments[J paymentJSON, R interface{ wire() J }](c *call, st *store[R]) *reply {
	group := c.params["account_group_id"]
	var items []J
	for _, r := range st.all {
		j := r.wire()
		if _, g, _ := j.listKey(); g == group {
			items = append(items, j)
		}
	}
	keys := sortKeys[J]{
		"id": func(a, b J) int {
			ida, _, _ := a.listKey()
			idb, _, _ := b.listKey()
			return cmp.Compare(ida, idb)
		},
		"created_at": func(a, b J) int {
			_, _, ta := a.listKey()
			_, _, tb := b.listKey()
			return ta.Compare(tb)
		},
	}
	return jsonReply(http.StatusOK, paginate(items, c.page, keys))
}
