package main

import (
	"encoding/json"
	"strings"
	"testing"
)

const swagger = `{
  "swagger": "2.0", "info": {"title": "t", "version": "v1"}, "tags": [],
  "paths": {
    "/v1/things": {"post": {"operationId": "ThingService_CreateThing",
      "parameters": [{"name": "body", "in": "body", "required": true, "schema": {"$ref": "#/definitions/CreateThingRequest"}}],
      "responses": {"200": {"schema": {"$ref": "#/definitions/Thing"}}}}},
    "/v1/things:watch": {"get": {"operationId": "ThingService_WatchThings",
      "parameters": [{"name": "kinds", "in": "query", "type": "array", "items": {"type": "string"}, "collectionFormat": "multi"}],
      "responses": {"200": {"schema": {"type": "object", "properties": {"result": {"$ref": "#/definitions/WatchThingsResponse"}}}}}}}
  },
  "definitions": {
    "CreateThingRequest": {"type": "object", "properties": {"thing": {"$ref": "#/definitions/Thing"}}},
    "Thing": {"type": "object"}, "WatchThingsResponse": {"type": "object"}
  }
}`

func TestConvert(t *testing.T) {
	var in map[string]any
	if err := json.Unmarshal([]byte(swagger), &in); err != nil {
		t.Fatal(err)
	}
	doc, err := convert(in, map[string]bool{"ThingService_WatchThings": true})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(doc)
	out := string(b)
	for _, want := range []string{
		`"openapi":"3.1.0"`,
		`"$ref":"#/components/schemas/Thing"`,
		`"$ref":"#/components/parameters/IdempotencyKey"`,
		`"application/problem+json"`,
		`"application/x-ndjson":{"example"`,
		`"text/event-stream"`,
		`"WatchThingsRecord"`,
		`"style":"form"`,
		`"mutualTLS":{"description"`,
		`"description":"**Stream.**`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the description lacks %s", want)
		}
	}
	if strings.Contains(out, "#/definitions/") {
		t.Error("a Swagger 2.0 reference is left")
	}

	if _, err := convert(in, map[string]bool{"ThingService_WatchOthers": true}); err == nil {
		t.Error("a stream without an HTTP rule was taken")
	}
}
