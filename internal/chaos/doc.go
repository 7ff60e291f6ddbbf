// Package chaos owns the fault injection of hl's chaos tests: a Proxy in
// front of a real server (the Gitea harness, a Helm repository, an OCI
// registry) that resets, drops, delays, truncates or answers 5xx at a
// seeded rate or by rule, and a Runner that SIGKILLs a command (hl run as
// a process) at seeded moments and runs it again. ForEach runs a journey
// once per seed — a fixed few in `make test`, as many as CHAOS_RUNS or
// CHAOS_DURATION ask in `make chaos` — and prints every failing seed so
// CHAOS_SEED replays it.
//
// It is a leaf helper under internal/, like the server harnesses it is
// used with: it knows no hl package, so any journey's test (bootstrap,
// bot, render, the loop test) can put it in front of its servers.
package chaos
