package github

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"hl.dev/hl/bot/forge"
)

// syncUpdate is the smallest version of what the run loop does for one
// update whose branch is already pushed, written against forge.Forge only.
func syncUpdate(ctx context.Context, f forge.Forge, branch, title, body string, labels []string) (string, error) {
	base, err := f.DefaultBranch(ctx)
	if err != nil {
		return "", err
	}
	if _, err := f.BranchLastCommitAuthor(ctx, branch); err != nil {
		return "", fmt.Errorf("branch not pushed: %w", err)
	}
	pr, err := f.FindPR(ctx, branch, base)
	switch {
	case errors.Is(err, forge.ErrNotFound):
		if _, err := f.CreatePR(ctx, forge.NewPR{Title: title, Body: body, Head: branch, Base: base, Labels: labels}); err != nil {
			return "", err
		}
		return "created", nil
	case err != nil:
		return "", err
	case pr.State == forge.StateClosed:
		return "ignored: closed by a human", nil
	case pr.State == forge.StateMerged:
		return "merged", nil
	case pr.Title != title || pr.Body != body:
		return "updated", f.UpdatePR(ctx, pr.Number, title, body)
	}
	return "unchanged", nil
}

func TestScenarioUpgrade(t *testing.T) {
	g := newFake(t)
	ctx := context.Background()
	g.on("GET "+rp, ok("repos/repo.json"))
	g.on("GET "+rp+"/branches/"+headRef, ok("branches/hl-k3s.json"))
	g.on("GET "+rp+"/labels?per_page=100", ok("labels/list.json"))
	g.on("POST "+rp+"/labels", reply{201, "labels/created-hl.json"}, reply{201, "labels/created-minor.json"})
	g.on("POST "+rp+"/issues/12/labels", ok("labels/issue-12.json"))
	g.on("POST "+rp+"/pulls", reply{201, "pulls/created-12.json"})
	g.on("PATCH "+rp+"/pulls/12", ok("pulls/edited-12.json"))
	labels := []string{"hl", "minor"}

	run := func(title, body, want string, wantKeys_ ...string) {
		t.Helper()
		var f forge.Forge = g.forge(t) // a fresh process each run
		got, err := syncUpdate(ctx, f, headRef, title, body, labels)
		if err != nil || got != want {
			t.Fatalf("run: %q, %v; want %q", got, err, want)
		}
		reqs := g.requests()
		checkAuth(t, reqs)
		wantKeys(t, reqs, wantKeys_...)
	}
	prologue := []string{"GET " + rp, "GET " + rp + "/branches/" + headRef, "GET " + rp + "/pulls"}

	// Run 1: no PR yet → open one, then label it.
	g.on(findHead, ok("pulls/empty.json"))
	run("Update k3s to v1.30.4+k3s1", "v1.30.4", "created", append(prologue,
		"GET "+rp+"/pulls", "POST "+rp+"/pulls", "GET "+rp+"/labels", "POST "+rp+"/labels", "POST "+rp+"/labels", "POST "+rp+"/issues/12/labels")...)

	// Run 2: a newer release; the PR is found by head and edited in place.
	g.on(findHead, ok("pulls/list-head-open-12.json"))
	run("Update k3s to v1.30.5+k3s1", "v1.30.5", "updated", append(prologue, "PATCH "+rp+"/pulls/12")...)

	// Run 3: a human closed #12: detected, neither reopened nor recreated.
	g.on(findHead, ok("pulls/list-head-closed-12.json"))
	run("Update k3s to v1.30.5+k3s1", "v1.30.5", "ignored: closed by a human", prologue...)
}
