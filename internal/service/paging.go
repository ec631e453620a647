package service

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"math"
	"strings"

	"github.com/upvest-gateway/gateway/internal/upstream"
)

// A page token is opaque to callers (AIP-158) and, inside, a small versioned
// struct: the upstream offset of the next page and a hash of the list it
// belongs to (account group and sort order), so a token replayed against
// another list is refused instead of silently paging it from an arbitrary
// offset. Layout, base64url without padding:
//
//	version (1 byte) | scope hash (8 bytes) | offset (uvarint)
const pageTokenVersion = 1

// maxPageOffset keeps offsets inside int32, which every upstream accepts.
const maxPageOffset = math.MaxInt32

type pageScope [8]byte

// scopeOf identifies one list: the same account group in the same order.
// page_size may change between pages (AIP-158), so it is not part of it.
func scopeOf(accountGroupID, sort, order string) pageScope {
	h := sha256.Sum256([]byte("v1\x00" + strings.ToLower(accountGroupID) + "\x00" + sort + "\x00" + order))
	var s pageScope
	copy(s[:], h[:])
	return s
}

func encodePageToken(offset int, scope pageScope) string {
	b := make([]byte, 0, 1+len(scope)+binary.MaxVarintLen64)
	b = append(b, pageTokenVersion)
	b = append(b, scope[:]...)
	b = binary.AppendUvarint(b, uint64(offset))
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodePageToken returns the offset a token holds, or false when the token
// is malformed, of another version, or issued for another list.
func decodePageToken(token string, scope pageScope) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) < 1+len(scope)+1 || b[0] != pageTokenVersion {
		return 0, false
	}
	if pageScope(b[1:1+len(scope)]) != scope {
		return 0, false
	}
	off, n := binary.Uvarint(b[1+len(scope):])
	if n <= 0 || 1+len(scope)+n != len(b) || off > maxPageOffset {
		return 0, false
	}
	// One token per position: refuse other spellings of it (base64 trailing
	// bits, overlong varints).
	if encodePageToken(int(off), scope) != token {
		return 0, false
	}
	return int(off), true
}

// listRequest is what every List* request has: the account group and the
// AIP-158/132 paging fields.
type listRequest interface {
	GetAccountGroupId() string
	GetPageSize() int32
	GetPageToken() string
	GetOrderBy() string
}

// listParams validates the paging fields of req into v and maps them onto
// the upstream's limit/offset/sort/order.
func listParams(v *validator, req listRequest) (upstream.ListParams, pageScope) {
	v.id("account_group_id", req.GetAccountGroupId())
	v.pageSize("page_size", req.GetPageSize())
	sort, order := v.orderBy("order_by", req.GetOrderBy())
	scope := scopeOf(req.GetAccountGroupId(), sort, order)
	p := upstream.ListParams{Limit: int(req.GetPageSize()), Sort: sort, Order: order}
	if t := req.GetPageToken(); t != "" {
		off, ok := decodePageToken(t, scope)
		if !ok {
			v.add("page_token", "is not a next_page_token of this list: it is malformed, or was issued for another account_group_id or order_by")
		}
		p.Offset = off
	}
	return p, scope
}

// page is one page of a list, ready for the response message.
type page[P any] struct {
	items []P
	next  string
	total int32
}

// nextPage builds the page from an upstream answer to a request at offset:
// next_page_token is empty on the last page (offset+count >= total_count) and
// after an empty page, so a caller's loop always ends.
func nextPage[T, P any](l *upstream.List[T], offset int, scope pageScope, conv func(*T) P) page[P] {
	items := make([]P, len(l.Data))
	for i := range l.Data {
		items[i] = conv(&l.Data[i])
	}
	n := len(l.Data)
	// A total below what was already seen would end paging early.
	total := max(l.Meta.TotalCount, offset+n)
	var pg page[P]
	pg.items = items
	pg.total = int32(min(total, math.MaxInt32))
	if n > 0 && offset+n < total && offset+n <= maxPageOffset {
		pg.next = encodePageToken(offset+n, scope)
	}
	return pg
}
