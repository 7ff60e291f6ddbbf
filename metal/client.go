package metal

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// APIClient talks to hl metal serve's API (bearer metal-api-token).
type APIClient struct {
	BaseURL string
	Token   string
	HTTP    *http.Client
}

func (c *APIClient) do(ctx context.Context, method, path string, out any) error {
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// Reprovision marks a node for reinstall and opens its install window.
func (c *APIClient) Reprovision(ctx context.Context, name string, rejoin bool) error {
	return c.do(ctx, http.MethodPost, "/api/v1/nodes/"+url.PathEscape(name)+"/reprovision?rejoin="+fmt.Sprint(rejoin), nil)
}

// Nodes lists the nodes with their install state.
func (c *APIClient) Nodes(ctx context.Context) ([]NodeStatus, error) {
	var out []NodeStatus
	return out, c.do(ctx, http.MethodGet, "/api/v1/nodes", &out)
}

// LocalProvisioner works on the state file directly (on the PXE host).
type LocalProvisioner struct {
	Dir   string
	State StateFile
	Now   func() time.Time
	// InstallWindow is how long the window Reprovision opens stays open
	// (DefaultInstallWindow when zero).
	InstallWindow time.Duration
}

func (l *LocalProvisioner) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// Reprovision marks a node for reinstall and opens its install window.
func (l *LocalProvisioner) Reprovision(_ context.Context, name string, rejoin bool) error {
	idx, err := LoadIndex(l.Dir)
	if err != nil {
		return err
	}
	n, ok := idx.ByName(name)
	if !ok {
		return fmt.Errorf("no node %q in %s (nodes: %s)", name, IndexFile, strings.Join(idx.Names(), ", "))
	}
	return l.State.MarkReprovision(n.MAC, n.Name, rejoin, l.now(), l.InstallWindow)
}

// Nodes lists the nodes with their install state.
func (l *LocalProvisioner) Nodes(context.Context) ([]NodeStatus, error) {
	idx, err := LoadIndex(l.Dir)
	if err != nil {
		return nil, err
	}
	st, err := l.State.Load()
	if err != nil {
		return nil, err
	}
	return Statuses(idx, st, l.now()), nil
}
