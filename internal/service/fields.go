package service

import (
	"regexp"
	"strings"
	"sync"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// upstreamNames are Upvest's names for what the gateway's requests call
// otherwise (its paging parameters, its idempotency header).
var upstreamNames = map[string]string{
	"limit":           "page_size",
	"offset":          "page_token",
	"sort":            "order_by",
	"order":           "order_by",
	"idempotency-key": "request_id",
	"idempotency_key": "request_id",
}

// requestFields is the set of the field names of the gateway's requests
// (upvest.gateway.v1), read once from the registered descriptors: Upvest's
// body fields have the same names.
var requestFields = sync.OnceValue(func() map[string]bool {
	fields := map[string]bool{}
	protoregistry.GlobalFiles.RangeFilesByPackage("upvest.gateway.v1", func(fd protoreflect.FileDescriptor) bool {
		msgs := fd.Messages()
		for i := range msgs.Len() {
			if m := msgs.Get(i); strings.HasSuffix(string(m.Name()), "Request") {
				fs := m.Fields()
				for j := range fs.Len() {
					fields[string(fs.Get(j).Name())] = true
				}
			}
		}
		return true
	})
	return fields
})

// fieldMention finds where a problem detail names a field: after the word
// field or parameter ("field cash_amount: …", "unknown query parameter
// \"sort\""), or as a label ("limit: \"x\" is not an integer").
var fieldMention = regexp.MustCompile(`(?i)(?:field|parameter)s?\s+["']?([a-z0-9_-]+)|(?:^|[\s(,;])["']?([a-z0-9_-]+)["']?:`)

// upstreamField is the request field an Upvest 400's detail names, as the
// gateway's request calls it; "" when it names none.
func upstreamField(detail string) string {
	for _, m := range fieldMention.FindAllStringSubmatch(detail, -1) {
		w := strings.ToLower(m[1] + m[2])
		if f, ok := upstreamNames[w]; ok {
			return f
		}
		if requestFields()[w] {
			return w
		}
	}
	return ""
}
