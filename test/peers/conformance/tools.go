//go:build tools

// Package tools pins the OCI distribution-spec conformance program so
// `go build github.com/opencontainers/distribution-spec/conformance` resolves through this module.
package tools

import _ "github.com/opencontainers/distribution-spec/conformance"
