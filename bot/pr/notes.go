package pr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"
)

// Notes are the release notes of one version, as its source's forge
// publishes them.
type Notes struct {
	Tag, Title, Body, URL string
	// Repo is the source repository's web page (issue links lead there).
	Repo string
}

// MaxNotes bounds the notes of one update in a PR body (runes).
const MaxNotes = 4000

// NotesFetcher reads release notes from where a dependency's source lives
// (its SourceURL): GitHub (through its API) or the homelab's Gitea, the
// only hosts whose API it knows. Each token goes only to its own host,
// never to a host some index or label names. Requests go through Client
// (the datasources' conditional cache: an unchanged release costs a 304).
type NotesFetcher struct {
	Client       *http.Client
	GitHubAPIURL string // default https://api.github.com/
	GitHubToken  string
	GiteaURL     string
	GiteaToken   string

	// down are the API hosts that failed this run (after the client's
	// retries): one outage costs one request, not one per update.
	down sync.Map
}

// errNoAPI: the source is on a host whose release API the fetcher does
// not know.
var errNoAPI = errors.New("no release API known for this host")

// Fetch returns the notes of version of the project at sourceURL, trying
// the tags version, v<version> and <name>-<version> (charts released
// from a monorepo); nil when the source has no release for any of them or
// lives where no API is known.
func (f *NotesFetcher) Fetch(ctx context.Context, sourceURL, name, version string) (*Notes, error) {
	api, token, owner, repo, web, err := f.endpoint(sourceURL)
	if errors.Is(err, errNoAPI) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if _, down := f.down.Load(api); down {
		return nil, fmt.Errorf("release notes: %s failed earlier in this run", api)
	}
	for _, tag := range tagCandidates(name, version) {
		u := fmt.Sprintf("%s/repos/%s/%s/releases/tags/%s", api, url.PathEscape(owner), url.PathEscape(repo), url.PathEscape(tag))
		n, err := f.get(ctx, u, token)
		if err != nil {
			f.down.Store(api, true)
			return nil, err
		}
		if n != nil {
			n.Repo = web
			return n, nil
		}
	}
	return nil, nil
}

func tagCandidates(name, version string) []string {
	out := []string{version}
	if !strings.HasPrefix(version, "v") {
		out = append(out, "v"+version)
	}
	if name != "" {
		out = append(out, name+"-"+strings.TrimPrefix(version, "v"))
	}
	return out
}

// endpoint maps a source URL to its forge's API base, the token for it,
// the repository and its web page.
func (f *NotesFetcher) endpoint(sourceURL string) (api, token, owner, repo, web string, err error) {
	u, err := url.Parse(sourceURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return "", "", "", "", "", errNoAPI
	}
	prefix := ""
	switch {
	case strings.EqualFold(u.Host, "github.com"):
		api = f.GitHubAPIURL
		if api == "" {
			api = "https://api.github.com/"
		}
		api, token = strings.TrimSuffix(api, "/"), f.GitHubToken
	case f.GiteaURL != "" && sameHost(u, f.GiteaURL):
		base := strings.TrimSuffix(f.GiteaURL, "/")
		if bu, err := url.Parse(base); err == nil {
			prefix = strings.TrimSuffix(bu.Path, "/") // a Gitea served under a path
		}
		api, token = base+"/api/v1", f.GiteaToken
	default:
		return "", "", "", "", "", errNoAPI
	}
	parts := strings.Split(strings.Trim(strings.TrimPrefix(u.Path, prefix), "/"), "/")
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		return "", "", "", "", "", errNoAPI
	}
	owner, repo = parts[0], strings.TrimSuffix(parts[1], ".git")
	web = u.Scheme + "://" + u.Host + prefix + "/" + owner + "/" + repo
	return api, token, owner, repo, web, nil
}

func sameHost(u *url.URL, base string) bool {
	b, err := url.Parse(base)
	return err == nil && strings.EqualFold(b.Host, u.Host)
}

func (f *NotesFetcher) get(ctx context.Context, u, token string) (*Notes, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "token "+token)
	}
	hc := f.Client
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, nil
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("release notes: GET %s: %s", u, resp.Status)
	}
	var rel struct {
		TagName string `json:"tag_name"`
		Name    string `json:"name"`
		Body    string `json:"body"`
		HTMLURL string `json:"html_url"`
		Draft   bool   `json:"draft"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&rel); err != nil {
		return nil, fmt.Errorf("release notes: GET %s: %w", u, err)
	}
	if rel.Draft {
		return nil, nil
	}
	return &Notes{Tag: rel.TagName, Title: rel.Name, Body: rel.Body, URL: rel.HTMLURL}, nil
}

var (
	mentionRe  = regexp.MustCompile("(^|[^\\w/`@.])@([A-Za-z0-9][A-Za-z0-9-]*)")
	issueRefRe = regexp.MustCompile(`(^|[\s(\[])#([0-9]+)\b`)
)

// SanitizeNotes makes release notes safe to embed in a PR of the homelab's
// repository: no @mention pings anyone (a zero-width space follows the
// @), #123 links to the source repository's issue instead of the
// homelab's, no HTML comment can pass for the bot's own markers, and the
// text is cut at MaxNotes runes with a pointer to the rest.
func SanitizeNotes(body, repoURL, fullURL string) string {
	body = strings.ReplaceAll(body, "\r\n", "\n")
	cut := false
	if utf8.RuneCountInString(body) > MaxNotes {
		r := []rune(body)
		body, cut = string(r[:MaxNotes]), true
	}
	body = strings.ReplaceAll(body, "<!--", "&lt;!--")
	body = mentionRe.ReplaceAllString(body, "$1@&#8203;$2")
	if src := strings.TrimSuffix(repoURL, "/"); src != "" {
		body = issueRefRe.ReplaceAllString(body, "$1[#$2]("+src+"/issues/$2)")
	}
	body = strings.TrimSpace(body)
	if cut {
		body += "\n\n… (cut short"
		if fullURL != "" {
			body += ": the whole notes are at " + fullURL
		}
		body += ")"
	}
	return body
}
