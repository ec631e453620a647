package main

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
)

// obj is a JSON object of the description.
type obj = map[string]any

func ref(kind, name string) obj { return obj{"$ref": "#/components/" + kind + "/" + name} }

// convert turns protoc-gen-openapiv2's Swagger 2.0 document into the
// gateway's OpenAPI 3.1 description. streams are the operation ids of the
// Watch RPCs.
func convert(swagger map[string]any, streams map[string]bool) (obj, error) {
	defs, _ := swagger["definitions"].(map[string]any)
	schemas := obj{}
	for name, s := range defs {
		schemas[name] = rewriteRefs(s)
	}
	for name, s := range contractSchemas() {
		if _, dup := schemas[name]; dup {
			return nil, fmt.Errorf("schema %s is both a message and part of the contract", name)
		}
		schemas[name] = s
	}

	paths := obj{}
	swaggerPaths, _ := swagger["paths"].(map[string]any)
	seen := map[string]bool{}
	for path, item := range swaggerPaths {
		ops, _ := item.(map[string]any)
		out := obj{}
		for method, op := range ops {
			o, _ := op.(map[string]any)
			id, _ := o["operationId"].(string)
			var (
				conv obj
				err  error
			)
			if streams[id] {
				seen[id] = true
				conv, err = streamOperation(o, schemas)
			} else {
				conv, err = unaryOperation(method, o)
			}
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", strings.ToUpper(method), path, err)
			}
			out[method] = conv
		}
		paths[path] = out
	}
	for id := range streams {
		if !seen[id] {
			return nil, fmt.Errorf("stream %s has no HTTP rule in the description", id)
		}
	}

	info, _ := swagger["info"].(map[string]any)
	info = rewriteRefs(info).(map[string]any)
	info["description"] = apiDescription
	return obj{
		"openapi": "3.1.0",
		"info":    info,
		"servers": []any{obj{"url": "http://127.0.0.1:8080", "description": "The gateway's default HTTP listener (GATEWAY_HTTP_ADDR); https:// with GATEWAY_TLS_CERT_FILE."}},
		"tags":    swagger["tags"],
		// Any one of these: mutual TLS, a bearer token, or, on a gateway
		// configured without caller security (loopback only), nothing.
		"security": []any{obj{"mutualTLS": []any{}}, obj{"bearerAuth": []any{}}, obj{}},
		"paths":    paths,
		"components": obj{
			"schemas":         schemas,
			"responses":       problemResponses(),
			"parameters":      contractParameters(),
			"headers":         contractHeaders(),
			"securitySchemes": securitySchemes(),
		},
	}, nil
}

// rewriteRefs copies v with Swagger 2.0 references made OpenAPI 3 ones.
func rewriteRefs(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(obj, len(v))
		for k, x := range v {
			if s, ok := x.(string); ok && k == "$ref" {
				out[k] = strings.Replace(s, "#/definitions/", "#/components/schemas/", 1)
				continue
			}
			out[k] = rewriteRefs(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = rewriteRefs(x)
		}
		return out
	}
	return v
}

// common is what every operation keeps of its Swagger 2.0 form.
func common(op map[string]any) obj {
	out := obj{}
	for _, k := range []string{"summary", "description", "operationId", "tags"} {
		if v, ok := op[k]; ok {
			out[k] = v
		}
	}
	return out
}

// parameters converts the path and query parameters, and returns the body
// parameter's schema, if any.
func parameters(op map[string]any) (params []any, body obj, err error) {
	list, _ := op["parameters"].([]any)
	for _, p := range list {
		p, _ := p.(map[string]any)
		in, _ := p["in"].(string)
		if in == "body" {
			body = obj{
				"required": true,
				"content":  obj{"application/json": obj{"schema": rewriteRefs(p["schema"])}},
			}
			if d, ok := p["description"]; ok {
				body["description"] = d
			}
			continue
		}
		if in != "path" && in != "query" {
			return nil, nil, fmt.Errorf("parameter in %q", in)
		}
		schema := obj{}
		for _, k := range []string{"type", "format", "items", "enum", "default", "pattern", "minimum", "maximum", "maxLength", "minLength"} {
			if v, ok := p[k]; ok {
				schema[k] = rewriteRefs(v)
			}
		}
		q := obj{"name": p["name"], "in": in, "schema": schema}
		if d, ok := p["description"]; ok {
			q["description"] = d
		}
		if r, _ := p["required"].(bool); r || in == "path" {
			q["required"] = true
		}
		if p["collectionFormat"] == "multi" {
			q["style"], q["explode"] = "form", true
		}
		params = append(params, q)
	}
	return params, body, nil
}

// unaryOperation is a call answered with one JSON message.
func unaryOperation(method string, op map[string]any) (obj, error) {
	out := common(op)
	params, body, err := parameters(op)
	if err != nil {
		return nil, err
	}
	creating := method == "post"
	if creating {
		params = append(params, ref("parameters", "IdempotencyKey"))
	}
	if len(params) > 0 {
		out["parameters"] = params
	}
	if body != nil {
		out["requestBody"] = body
	}
	ok, _ := op["responses"].(map[string]any)["200"].(map[string]any)
	if ok == nil {
		return nil, fmt.Errorf("no 200 response")
	}
	headers := obj{"Upvest-Request-Id": ref("headers", "UpvestRequestId")}
	if creating {
		headers["Idempotency-Key"] = ref("headers", "IdempotencyKey")
	}
	responses := obj{"200": obj{
		"description": "OK",
		"headers":     headers,
		"content":     obj{"application/json": obj{"schema": rewriteRefs(ok["schema"])}},
	}}
	codes := []int{400, 401, 403, 404, 429, 500, 503, 504}
	if creating {
		codes = append(codes, 409, 413)
	}
	addProblems(responses, codes)
	out["responses"] = responses
	return out, nil
}

// streamOperation is a Watch RPC: NDJSON or Server-Sent Events.
func streamOperation(op map[string]any, schemas obj) (obj, error) {
	out := common(op)
	params, body, err := parameters(op)
	if err != nil {
		return nil, err
	}
	if body != nil {
		return nil, fmt.Errorf("a stream with a body")
	}
	out["parameters"] = append(params, ref("parameters", "LastEventID"))
	desc, _ := out["description"].(string)
	out["description"] = strings.TrimSpace(desc + "\n\n" + streamDescription)

	// protoc-gen-openapiv2 describes a stream's 200 as {"result": <message>}.
	ok, _ := op["responses"].(map[string]any)["200"].(map[string]any)
	schema, _ := ok["schema"].(map[string]any)
	props, _ := schema["properties"].(map[string]any)
	result, _ := props["result"].(map[string]any)
	msgRef, _ := result["$ref"].(string)
	msg := strings.TrimPrefix(msgRef, "#/definitions/")
	if msg == "" || msg == msgRef {
		return nil, fmt.Errorf("no message in the stream's response")
	}
	record := strings.TrimSuffix(msg, "Response") + "Record"
	schemas[record] = obj{
		"type": "object",
		"description": "One line of the application/x-ndjson answer: a message as `result`, or, as the last line of a " +
			"stream that failed after it started, the problem as `error`.",
		"properties": obj{
			"result": ref("schemas", msg),
			"error":  ref("schemas", "Problem"),
		},
	}

	responses := obj{"200": obj{
		"description": "The stream: one message per line (application/x-ndjson, the default) or per event " +
			"(text/event-stream, when Accept lists it). Each message is flushed as it is sent. " +
			"A stream that ends cleanly ends with the answer; one that fails after it started ends with the problem.",
		"headers": obj{"Upvest-Request-Id": ref("headers", "UpvestRequestId")},
		"content": obj{
			"application/x-ndjson": obj{
				"schema":  ref("schemas", record),
				"example": ndjsonExample,
			},
			"text/event-stream": obj{
				"schema": obj{
					"type":        "string",
					"description": sseDescription,
				},
				"example": sseExample,
			},
		},
	}}
	addProblems(responses, []int{400, 401, 403, 429, 500, 501, 503})
	out["responses"] = responses
	return out, nil
}

// problemNames are the error answers of the REST face, by HTTP status.
var problemNames = map[int]string{
	400: "BadRequest", 401: "Unauthenticated", 403: "PermissionDenied", 404: "NotFound",
	409: "Conflict", 413: "ContentTooLarge", 429: "TooManyRequests", 500: "InternalError",
	501: "NotImplemented", 503: "Unavailable", 504: "GatewayTimeout",
}

func addProblems(responses obj, codes []int) {
	slices.Sort(codes)
	for _, c := range codes {
		responses[fmt.Sprint(c)] = ref("responses", problemNames[c])
	}
	responses["default"] = ref("responses", "Error")
}

// problemResponses are the error answers, each application/problem+json.
func problemResponses() obj {
	out := obj{}
	statuses := make([]int, 0, len(problemNames))
	for c := range problemNames {
		statuses = append(statuses, c)
	}
	sort.Ints(statuses)
	for _, c := range statuses {
		out[problemNames[c]] = problemResponse(c)
	}
	out["Error"] = problemResponse(0)
	return out
}

func problemResponse(status int) obj {
	ex := problemExamples[status]
	desc := "An error (any other status), as application/problem+json."
	if status != 0 {
		desc = http.StatusText(status) + ": " + ex.when
	}
	headers := obj{
		"Upvest-Request-Id": ref("headers", "UpvestRequestId"),
		"Idempotency-Key":   ref("headers", "IdempotencyKey"),
	}
	if status == 429 || status == 503 {
		headers["Retry-After"] = ref("headers", "RetryAfter")
	}
	media := obj{"schema": ref("schemas", "Problem")}
	if ex.body != nil {
		media["example"] = ex.body
	}
	return obj{
		"description": desc,
		"headers":     headers,
		"content":     obj{"application/problem+json": media},
	}
}
