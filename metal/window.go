package metal

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"time"
)

// DefaultInstallWindow is how long an install window stays open when not
// told: a netboot install over a slow mirror takes 10 to 30 minutes.
const DefaultInstallWindow = 60 * time.Minute

// What opened a window.
const (
	// OpenedFirstBoot: a node the state had never seen installed
	// PXE-booted from its address.
	OpenedFirstBoot = "first-boot"
	// OpenedReprovision: hl metal reprovision (locally or via the API).
	OpenedReprovision = "reprovision"
)

// ResourceCallback names the installer's final POST /callback/<mac> in
// token placeholders.
const ResourceCallback = "callback"

// tokenPlaceholder is where a served file carries a token: the server
// mints a fresh one for the named resource (a file of the node's folder,
// or "callback") when it serves the file. Files thereby hand the
// installer exactly the next step of the chain and nothing else:
// boot.ipxe → install config → post-install.sh → k3s config, callback.
var tokenPlaceholder = regexp.MustCompile(`@@HL_TOKEN:([A-Za-z0-9._-]+)@@`)

// Window is an open install window of one node. Tokens are random (not
// derived from anything), single-use and stored as SHA-256 only: the state
// file never holds a token that would release anything.
type Window struct {
	Opened    string    `json:"opened"`
	OpenedAt  time.Time `json:"openedAt"`
	ExpiresAt time.Time `json:"expiresAt"`
	// Tokens maps each resource a live token releases to the hex SHA-256
	// of that token. Redeeming a token deletes its entry.
	Tokens map[string]string `json:"tokens,omitempty"`
	// Released lists the files served with secrets filled in (the k3s
	// config): each at most once per window.
	Released []string `json:"released,omitempty"`
	// Spent records, per resource, the token last redeemed (its hash)
	// and by which run of the server: the answer to it may have died
	// with that run (see redeem).
	Spent map[string]Spent `json:"spent,omitempty"`
}

// Spent is a redeemed token: its hash, when, and the run of the server
// (a random ID per process) that redeemed it.
type Spent struct {
	Hash string    `json:"hash"`
	At   time.Time `json:"at"`
	Run  string    `json:"run"`
}

// ReplayGrace is how long after a token was redeemed a later run of the
// server takes it once more. A server killed (power cut, OOM) after it
// burnt a token and before the node heard the answer would otherwise
// strand the install: the node's retry carries the same token. The grace
// covers a reboot of the machine hl metal serve runs on while the node's
// curl keeps retrying (the rendered scripts retry for minutes).
const ReplayGrace = 15 * time.Minute

func openWindow(why string, now time.Time, length time.Duration) *Window {
	if length <= 0 {
		length = DefaultInstallWindow
	}
	now = now.UTC()
	return &Window{Opened: why, OpenedAt: now, ExpiresAt: now.Add(length)}
}

func tokenHash(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// newToken is 256 random bits in hex: URL-, shell- and YAML-safe as is.
func newToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never on Linux; a token must not be weak
	}
	return hex.EncodeToString(b)
}

// redeem burns the live token of resource when tok is it, and reports
// ok. A token already burnt is taken once more (replay) when a run of the
// server other than this one (run) burnt it within ReplayGrace of now:
// that run may have died before the answer left it, and the node's retry
// carries the same token. Within one run a token works once.
func (w *Window) redeem(resource, tok, run string, now time.Time) (ok, replay bool) {
	if tok == "" {
		return false, false
	}
	h := tokenHash(tok)
	if want, live := w.Tokens[resource]; live && subtle.ConstantTimeCompare([]byte(h), []byte(want)) == 1 {
		delete(w.Tokens, resource)
		w.spend(resource, h, run, now)
		return true, false
	}
	sp, spent := w.Spent[resource]
	if !spent || sp.Run == run || now.Sub(sp.At) > ReplayGrace || subtle.ConstantTimeCompare([]byte(h), []byte(sp.Hash)) != 1 {
		return false, false
	}
	// Once per run: a second retry against this run is refused.
	w.spend(resource, h, run, sp.At)
	return true, true
}

func (w *Window) spend(resource, hash, run string, at time.Time) {
	if w.Spent == nil {
		w.Spent = map[string]Spent{}
	}
	w.Spent[resource] = Spent{Hash: hash, At: at.UTC(), Run: run}
}

func (w *Window) released(file string) bool { return slices.Contains(w.Released, file) }

// mint fills every token placeholder of b with a fresh token for its
// resource (one per resource, replacing any live one), recording the
// hashes. known says which resources may have tokens.
func (w *Window) mint(b []byte, known func(string) bool) ([]byte, error) {
	fresh := map[string]string{}
	var bad error
	out := tokenPlaceholder.ReplaceAllFunc(b, func(m []byte) []byte {
		res := string(tokenPlaceholder.FindSubmatch(m)[1])
		if !known(res) {
			bad = fmt.Errorf("token placeholder for %q, which is not a file of the node or %q", res, ResourceCallback)
			return m
		}
		tok, ok := fresh[res]
		if !ok {
			tok = newToken()
			fresh[res] = tok
		}
		return []byte(tok)
	})
	if bad != nil {
		return nil, bad
	}
	if w.Tokens == nil {
		w.Tokens = map[string]string{}
	}
	for res, tok := range fresh {
		w.Tokens[res] = tokenHash(tok)
	}
	return out, nil
}
