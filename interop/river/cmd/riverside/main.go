// Command riverside plays River's side of effect-river's conformance suite
// (test/river/*.test.ts, `npm run test:river`): a real River client (v0.51.2) and River's
// own migrator on the database effect-river uses.
//
//	riverside migrate up|down|list|validate --database-url URL [--schema S] [--target-version N] [--max-steps N]
//	riverside serve --database-url URL [--schema S]
//
// `migrate` drives rivermigrate (the library River's CLI runs) and prints one JSON object on
// stdout. `serve` reads one JSON command per line on stdin and writes one JSON line per result
// and per event on stdout (protocol.go). Logs go to stderr, never stdout.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: riverside migrate|serve ...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "migrate":
		os.Exit(runMigrate(os.Args[2:]))
	case "serve":
		os.Exit(runServe(os.Args[2:]))
	default:
		fmt.Fprintf(os.Stderr, "riverside: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}
