//go:build tools

// Package tools pins River UI's command (built with `go build riverqueue.com/riverui/cmd/riverui`)
// so that `go mod tidy` keeps it and its dependencies in go.mod and go.sum.
package tools

import _ "riverqueue.com/riverui/cmd/riverui"
