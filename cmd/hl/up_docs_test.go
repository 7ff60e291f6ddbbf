package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"hl.dev/hl/internal/iostreams"
)

// hlCommandsIn finds every hl command line a document shows: each code
// span that starts with "hl " and each line of a fenced code block that
// does, cut at shell operators and comments.
func hlCommandsIn(doc string) []string {
	var out []string
	add := func(s string) {
		for _, part := range regexp.MustCompile(`&&|\|\||;|\|`).Split(s, -1) {
			part = strings.TrimSpace(part)
			if i := strings.Index(part, " #"); i >= 0 {
				part = strings.TrimSpace(part[:i])
			}
			if strings.HasPrefix(part, "hl ") || part == "hl" {
				out = append(out, part)
			}
		}
	}
	fenced := false
	for _, line := range strings.Split(doc, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			add(trimmed)
			continue
		}
		for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(line, -1) {
			add(m[1])
		}
	}
	return out
}

// checkHLCommand resolves a command line against hl's real command tree:
// the subcommands must exist, every flag must be one the command takes,
// and positional arguments must be allowed. Words in brackets are the
// usage notation of optional parts ([--out DIR]) and are read without
// them; a bare mention ("hl backup restore") may leave out arguments.
func checkHLCommand(line string) string {
	words := strings.Fields(strings.NewReplacer("[", "", "]", "").Replace(line))[1:]
	ios, _, _, _ := iostreams.Test()
	root := newRootCmd(ios)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	cmd, rest := root, words
	for len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		var sub *cobra.Command
		for _, c := range cmd.Commands() {
			if c.Name() == rest[0] || slices.Contains(c.Aliases, rest[0]) {
				sub = c
			}
		}
		if sub == nil {
			break
		}
		cmd, rest = sub, rest[1:]
	}
	if cmd == root {
		return "no command " + strings.Join(words, " ")
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return err.Error()
	}
	args := cmd.Flags().Args()
	// An upper-case word is a placeholder (SHELL, NODE), which may stand
	// for a subcommand.
	if cmd.HasSubCommands() && !cmd.Runnable() && len(args) > 0 {
		if args[0] == strings.ToUpper(args[0]) {
			return ""
		}
		return cmd.CommandPath() + " has no subcommand " + args[0]
	}
	if len(args) > 0 && cmd.Args != nil {
		if err := cmd.Args(cmd, args); err != nil {
			return err.Error()
		}
	}
	return ""
}

func TestCheckHLCommand(t *testing.T) {
	for _, tc := range []struct {
		line string
		ok   bool
	}{
		{"hl up", true},
		{"hl metal images pull", true},
		{"hl bootstrap cluster --kubeconfig ~/.kube/x.yaml --wait --healthy", true},
		{"hl metal reprovision NODE --rejoin", true},
		{"hl backup restore", true},
		{"hl init [--defaults] [--out DIR]", true},
		{"hl completion SHELL", true},
		{"hl metal pull", false},
		{"hl uptown", false},
		{"hl bootstrap cluster --wiat", false},
		{"hl up extra", false},
		{"hl metal reprovision A B", false},
	} {
		if got := checkHLCommand(tc.line); (got == "") != tc.ok {
			t.Errorf("%q: ok %t, got %q", tc.line, tc.ok, got)
		}
	}
}

// Every hl command the rendered documentation (the golden renders'
// README.md and docs/), hl's own README.md and hl init's next steps show
// is one hl has, with flags it takes.
func TestDocsNameOnlyRealCommands(t *testing.T) {
	docs, err := filepath.Glob("../../testdata/golden/*/docs/*.md")
	if err != nil || len(docs) < 12 {
		t.Fatalf("golden docs: %v %v", docs, err)
	}
	readmes, _ := filepath.Glob("../../testdata/golden/*/README.md")
	n := 0
	for _, f := range append(append(docs, readmes...), "../../README.md") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range hlCommandsIn(string(b)) {
			n++
			if msg := checkHLCommand(c); msg != "" {
				t.Errorf("%s: %q: %s", f, c, msg)
			}
		}
	}
	if n < 50 {
		t.Errorf("only %d hl commands found in the docs: the parser is broken", n)
	}
}

// hl init prints at most three next steps; each hl command in them is
// real, and hl's README.md quick start ("## Day one") shows the same
// commands in the same number of steps.
func TestInitNextStepsMatchREADME(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	out, errOut, code := hl(t, "init", "--defaults", "--out", filepath.Join(dir, "repo"))
	if code != 0 {
		t.Fatalf("hl init: exit %d\n%s\n%s", code, out, errOut)
	}
	_, steps, ok := strings.Cut(out, "Next steps, in this order:\n")
	if !ok {
		t.Fatalf("no next steps:\n%s", out)
	}
	initSteps := numbered(steps)
	if len(initSteps) == 0 || len(initSteps) > 3 {
		t.Fatalf("hl init prints %d next steps, want 1 to 3:\n%s", len(initSteps), steps)
	}
	initCmds := regexp.MustCompile(`\bhl [a-z]+(?: [a-z]+)*`).FindAllString(steps, -1)
	for _, c := range initCmds {
		if msg := checkHLCommand(c); msg != "" {
			t.Errorf("hl init's next steps: %q: %s", c, msg)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := bytes.Cut(readme, []byte("## Day one\n"))
	section, _, _ = bytes.Cut(section, []byte("\n## "))
	if got := numbered(string(section)); len(got) != len(initSteps) {
		t.Errorf("README.md's day one has %d steps, hl init prints %d", len(got), len(initSteps))
	}
	readmeCmds := hlCommandsIn(string(section))
	if strings.Join(readmeCmds, ",") != strings.Join(initCmds, ",") {
		t.Errorf("README.md's day one shows %v, hl init prints %v", readmeCmds, initCmds)
	}
	if _, err := os.Stat(filepath.Join(dir, "repo", "docs", "day-two.md")); err != nil {
		t.Errorf("hl init points at docs/day-two.md: %v", err)
	}
	// The credentials files the rendered docs name are rendered (the
	// golden renders leave secrets out, this render has them).
	docs, _ := filepath.Glob(filepath.Join(dir, "repo", "docs", "*.md"))
	named := 0
	for _, f := range docs {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile("`([a-z-]+/[a-z0-9/-]+\\.sops\\.yaml)`").FindAllStringSubmatch(string(b), -1) {
			named++
			if _, err := os.Stat(filepath.Join(dir, "repo", m[1])); err != nil {
				t.Errorf("%s names %s, which is not rendered", filepath.Base(f), m[1])
			}
		}
	}
	if named == 0 {
		t.Error("the rendered docs name no credentials file")
	}
}

// numbered returns the lines of text that start a numbered step.
func numbered(text string) []string {
	return regexp.MustCompile(`(?m)^\s*\d+\. .*$`).FindAllString(text, -1)
}
