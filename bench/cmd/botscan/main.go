// Command botscan is `hl bot scan DIR -o json` without the rest of hl: it
// links only the bot's extractors, so its peak RSS is the scan's own
// footprint, apart from the ~80-100 MiB the full hl binary (Kubernetes,
// Helm, SOPS and cloud SDK packages) occupies before any command runs.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/extract"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: botscan DIR")
		os.Exit(2)
	}
	deps, problems, err := extract.Scan(context.Background(), os.Args[1], extract.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, p := range problems {
		fmt.Fprintf(os.Stderr, "warning: %s: %s\n", p.File, p.Message)
	}
	if deps == nil {
		deps = []bot.Dependency{}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(deps); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
