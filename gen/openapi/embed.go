// Package openapi embeds the OpenAPI 3.1 description that buf generates
// beside this file (tools/protoc-gen-gateway-openapi), so the gateway can
// serve it. This file is the only one here not written by a generator.
package openapi

import _ "embed"

// Gateway is gateway.openapi.json: the REST face of all four services.
//
//go:embed gateway.openapi.json
var Gateway []byte
