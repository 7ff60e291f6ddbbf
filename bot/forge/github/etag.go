package github

import (
	"bytes"
	"io"
	"net/http"
	"sync"
)

// etagCache is a conditional-request cache for GETs: it remembers each
// 200's ETag and body by URL and authorization, sends If-None-Match next
// time, and turns a 304 back into the remembered 200 (marked with the
// X-From-Cache header) for go-github.
type etagCache struct {
	base    http.RoundTripper
	mu      sync.Mutex
	entries map[string]*cached
}

type cached struct {
	etag   string
	header http.Header
	body   []byte
}

const maxCachedBody = 4 << 20

func (c *etagCache) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet || req.Header.Get("If-None-Match") != "" {
		return c.base.RoundTrip(req)
	}
	key := req.Header.Get("Authorization") + " " + req.URL.String()
	c.mu.Lock()
	e := c.entries[key]
	c.mu.Unlock()
	if e != nil {
		req = req.Clone(req.Context())
		req.Header.Set("If-None-Match", e.etag)
	}
	resp, err := c.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusNotModified && e != nil:
		resp.Body.Close()
		h := e.header.Clone()
		for k, v := range resp.Header { // fresh rate-limit headers
			h[k] = v
		}
		h.Set("X-From-Cache", "1")
		return &http.Response{
			Status: "200 OK", StatusCode: http.StatusOK, Proto: resp.Proto, ProtoMajor: resp.ProtoMajor, ProtoMinor: resp.ProtoMinor,
			Header: h, Body: io.NopCloser(bytes.NewReader(e.body)), ContentLength: int64(len(e.body)), Request: req,
		}, nil
	case resp.StatusCode == http.StatusOK && resp.Header.Get("ETag") != "":
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxCachedBody+1))
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if len(body) <= maxCachedBody {
			c.mu.Lock()
			c.entries[key] = &cached{etag: resp.Header.Get("ETag"), header: resp.Header.Clone(), body: body}
			c.mu.Unlock()
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return resp, nil
	}
	return resp, nil
}
