//go:build tools

// Package tools pins notation's command so `go build github.com/notaryproject/notation/cmd/notation`
// resolves through this module's go.mod and go.sum (`go install …@version` cannot be used: it asks the module
// proxy for the module's version list, which the proxy refuses for notation).
package tools

import _ "github.com/notaryproject/notation/cmd/notation"
