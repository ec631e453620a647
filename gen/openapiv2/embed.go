// Package openapiv2 embeds the OpenAPI description that buf generates beside
// this file, so the gateway can serve it. This file is the only one here not
// written by a generator.
package openapiv2

import _ "embed"

// Gateway is gateway.swagger.json: the REST face of all four services.
//
//go:embed gateway.swagger.json
var Gateway []byte
