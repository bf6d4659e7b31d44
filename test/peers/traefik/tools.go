//go:build tools

// Package tools pins Traefik's command so `go build github.com/traefik/traefik/v3/cmd/traefik`
// resolves through this module's go.mod and go.sum.
package tools

import _ "github.com/traefik/traefik/v3/cmd/traefik"
