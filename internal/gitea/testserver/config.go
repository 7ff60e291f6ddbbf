package testserver

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// iniSection is one [section] of app.ini; name "" is the root section.
type iniSection struct {
	name string
	keys [][2]string
}

type iniFile []iniSection

// set replaces key in section or appends it, creating the section if needed.
func (f *iniFile) set(section, key, value string) {
	for i := range *f {
		s := &(*f)[i]
		if s.name != section {
			continue
		}
		for j := range s.keys {
			if s.keys[j][0] == key {
				s.keys[j][1] = value
				return
			}
		}
		s.keys = append(s.keys, [2]string{key, value})
		return
	}
	*f = append(*f, iniSection{name: section, keys: [][2]string{{key, value}}})
}

func (f iniFile) String() string {
	var b strings.Builder
	for _, s := range f {
		if s.name != "" {
			fmt.Fprintf(&b, "\n[%s]\n", s.name)
		}
		for _, kv := range s.keys {
			fmt.Fprintf(&b, "%s = %s\n", kv[0], kv[1])
		}
	}
	return b.String()
}

// appINI builds the configuration of a throw-away instance rooted at dir.
// Every secret Gitea would otherwise generate and write back into app.ini is
// set here, so the web process and the admin CLI never race on saving it.
func appINI(dir, src string, port int, extra map[string]map[string]string) (string, error) {
	runUser := "root"
	if u, err := user.Current(); err == nil {
		runUser = u.Username
	}
	secret := func(n int) string {
		b := make([]byte, n)
		_, _ = rand.Read(b) // never fails since Go 1.24
		return b64(b)
	}
	data := filepath.Join(dir, "data")
	addr := "127.0.0.1"
	p := strconv.Itoa(port)

	f := iniFile{
		{name: "", keys: [][2]string{
			{"APP_NAME", "hl test gitea"},
			{"RUN_MODE", "prod"},
			{"RUN_USER", runUser},
			{"WORK_PATH", dir},
			// Test containers and CI run as root; Gitea refuses that otherwise.
			{"I_AM_BEING_UNSAFE_RUNNING_AS_ROOT", "true"},
		}},
		{name: "server", keys: [][2]string{
			{"PROTOCOL", "http"},
			{"HTTP_ADDR", addr},
			{"HTTP_PORT", p},
			{"DOMAIN", addr},
			{"ROOT_URL", "http://" + addr + ":" + p + "/"},
			{"APP_DATA_PATH", data},
			// Non-bindata build: templates, locales and options come from source.
			{"STATIC_ROOT_PATH", src},
			{"DISABLE_SSH", "true"},
			{"START_SSH_SERVER", "false"},
			{"LFS_START_SERVER", "false"},
			{"LFS_JWT_SECRET", secret(32)},
			{"OFFLINE_MODE", "true"},
		}},
		{name: "database", keys: [][2]string{
			{"DB_TYPE", "sqlite3"},
			{"PATH", filepath.Join(data, "gitea.db")},
			{"SQLITE_JOURNAL_MODE", "WAL"},
			{"LOG_SQL", "false"},
		}},
		{name: "security", keys: [][2]string{
			{"INSTALL_LOCK", "true"},
			{"SECRET_KEY", secret(32)},
			{"INTERNAL_TOKEN", secret(64)},
			// Cheap hashing: tests authenticate with basic auth a lot and the
			// default pbkdf2 (50000 rounds) costs tens of ms per request.
			{"PASSWORD_HASH_ALGO", "pbkdf2$1000$50"},
			{"PASSWORD_CHECK_PWN", "false"},
			{"PASSWORD_COMPLEXITY", "off"},
			{"MIN_PASSWORD_LENGTH", "8"},
		}},
		{name: "oauth2", keys: [][2]string{
			{"JWT_SECRET", secret(32)},
			// The default RS256 makes every fresh instance generate an RSA
			// key at start-up, seconds on a busy 2-core machine.
			{"JWT_SIGNING_ALGORITHM", "HS256"},
		}},
		{name: "service", keys: [][2]string{
			// Only the admin (CLI/API) creates users.
			{"DISABLE_REGISTRATION", "true"},
			{"REQUIRE_SIGNIN_VIEW", "false"},
			{"ENABLE_NOTIFY_MAIL", "false"},
			{"REGISTER_EMAIL_CONFIRM", "false"},
			{"NO_REPLY_ADDRESS", "noreply.localhost"},
		}},
		{name: "repository", keys: [][2]string{
			{"ROOT", filepath.Join(dir, "repos")},
			{"DEFAULT_BRANCH", "main"},
			{"ENABLE_PUSH_CREATE_USER", "true"},
			{"ENABLE_PUSH_CREATE_ORG", "true"},
		}},
		{name: "webhook", keys: [][2]string{
			// Tests receive webhooks on httptest servers on loopback.
			{"ALLOWED_HOST_LIST", "*"},
			{"SKIP_TLS_VERIFY", "true"},
			{"DELIVER_TIMEOUT", "5"},
		}},
		{name: "migrations", keys: [][2]string{
			{"ALLOW_LOCALNETWORKS", "true"},
		}},
		{name: "mailer", keys: [][2]string{{"ENABLED", "false"}}},
		{name: "actions", keys: [][2]string{{"ENABLED", "false"}}},
		{name: "cron.update_checker", keys: [][2]string{{"ENABLED", "false"}}},
		{name: "session", keys: [][2]string{{"PROVIDER", "memory"}}},
		{name: "cache", keys: [][2]string{{"ADAPTER", "memory"}}},
		// In-memory queues: nothing to persist and no leveldb start-up cost.
		{name: "queue", keys: [][2]string{{"TYPE", "channel"}}},
		{name: "indexer", keys: [][2]string{
			{"ISSUE_INDEXER_TYPE", "bleve"},
			{"ISSUE_INDEXER_PATH", filepath.Join(dir, "indexers", "issues.bleve")},
			{"REPO_INDEXER_ENABLED", "false"},
		}},
		{name: "log", keys: [][2]string{
			{"MODE", "file"},
			{"LEVEL", "Warn"},
			{"ROOT_PATH", filepath.Join(dir, "log")},
		}},
	}

	sections := make([]string, 0, len(extra))
	for s := range extra {
		sections = append(sections, s)
	}
	sort.Strings(sections)
	for _, s := range sections {
		keys := make([]string, 0, len(extra[s]))
		for k := range extra[s] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := extra[s][k]
			if strings.ContainsAny(s+k+v, "\n\r") {
				return "", fmt.Errorf("app.ini override [%s] %s: newline not allowed", s, k)
			}
			f.set(s, k, v)
		}
	}
	return f.String(), nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// randomPassword is long enough for any Gitea password policy and ASCII-only.
func randomPassword() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "Hl-" + hex.EncodeToString(b)
}
