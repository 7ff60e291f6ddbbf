package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"hl.dev/hl/internal/asrendered"
)

// PipelineStep is one step of a rendered .woodpecker/ file.
type PipelineStep struct {
	// File is the pipeline file's name (validate.yaml).
	File string
	asrendered.WoodpeckerStep
}

// ID is "file/step", how tests name the steps they run.
func (s PipelineStep) ID() string { return s.File + "/" + s.Name }

// PipelineSteps reads every step of every .woodpecker/*.yaml of a
// rendered repo, files in name order, steps in file order.
func PipelineSteps(repo string) ([]PipelineStep, error) {
	files, err := filepath.Glob(filepath.Join(repo, ".woodpecker", "*.yaml"))
	if err != nil {
		return nil, err
	}
	more, err := filepath.Glob(filepath.Join(repo, ".woodpecker", "*.yml"))
	if err != nil {
		return nil, err
	}
	files = append(files, more...)
	sort.Strings(files)
	var out []PipelineStep
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		steps, err := asrendered.Steps(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for _, s := range steps {
			out = append(out, PipelineStep{File: filepath.Base(f), WoodpeckerStep: s})
		}
	}
	return out, nil
}

// PullRequest is what Woodpecker's server knows of a pipeline's trigger,
// turned into the CI_* metadata a step sees.
type PullRequest struct {
	// ForgeURL is the forge's base URL (https://git.example.org); Owner
	// and Repo name the repository.
	ForgeURL, Owner, Repo string
	// Number is the pull request's number; 0 for a push.
	Number int
	// Source and Target are the branches (a push: Target only).
	Source, Target string
	SHA            string
	// Netrc is the forge login the clone and the steps get.
	NetrcUser, NetrcPassword string
}

// CI is the metadata environment Woodpecker 3 sets for a step
// (pipeline/frontend/metadata's Environ, the fields hl's steps and
// Woodpecker's own script use).
func (p PullRequest) CI() map[string]string {
	u := strings.TrimSuffix(p.ForgeURL, "/")
	host := u
	if i := strings.Index(host, "://"); i >= 0 {
		host = host[i+3:]
	}
	host, _, _ = strings.Cut(host, "/")
	host, _, _ = strings.Cut(host, ":")
	env := map[string]string{
		"CI":                      "woodpecker",
		"CI_REPO":                 p.Owner + "/" + p.Repo,
		"CI_REPO_OWNER":           p.Owner,
		"CI_REPO_NAME":            p.Repo,
		"CI_REPO_URL":             u + "/" + p.Owner + "/" + p.Repo,
		"CI_REPO_CLONE_URL":       u + "/" + p.Owner + "/" + p.Repo + ".git",
		"CI_REPO_DEFAULT_BRANCH":  "main",
		"CI_COMMIT_SHA":           p.SHA,
		"CI_COMMIT_BRANCH":        p.Target,
		"CI_COMMIT_TARGET_BRANCH": p.Target,
		"CI_NETRC_MACHINE":        host,
		"CI_NETRC_USERNAME":       p.NetrcUser,
		"CI_NETRC_PASSWORD":       p.NetrcPassword,
	}
	if p.Number > 0 {
		env["CI_PIPELINE_EVENT"] = "pull_request"
		env["CI_COMMIT_REF"] = "refs/pull/" + strconv.Itoa(p.Number) + "/head"
		env["CI_COMMIT_PULL_REQUEST"] = strconv.Itoa(p.Number)
		env["CI_COMMIT_SOURCE_BRANCH"] = p.Source
	} else {
		env["CI_PIPELINE_EVENT"] = "push"
		env["CI_COMMIT_REF"] = "refs/heads/" + p.Target
	}
	return env
}
