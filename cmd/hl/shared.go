package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"
	"golang.org/x/term"
	"k8s.io/client-go/rest"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/credfile"
	"hl.dev/hl/internal/iostreams"
	"hl.dev/hl/internal/kubeclient"
	"hl.dev/hl/secrets"
)

// shared is what every command resolves the same way, in the spirit of
// Helm's action.Configuration: the streams, the logger (the global
// --log-format and --log-level), hl.yaml, the age identities, tokens, the
// Kubernetes client and the SSH key. Commands say what they need; the
// sources, their order and the error texts are defined here once.
type shared struct {
	ios       *iostreams.IOStreams
	logFormat string
	logLevel  string

	logOnce sync.Once
	log     *slog.Logger
	logErr  error
}

func newShared(ios *iostreams.IOStreams) *shared {
	return &shared{ios: ios, logFormat: "text", logLevel: "info"}
}

// logger is the one logger of the process, on stderr.
func (s *shared) logger() (*slog.Logger, error) {
	s.logOnce.Do(func() {
		var level slog.Level
		if err := level.UnmarshalText([]byte(s.logLevel)); err != nil {
			s.logErr = &exitError{code: 2, msg: "--log-level: " + err.Error()}
			return
		}
		o := &slog.HandlerOptions{Level: level}
		switch s.logFormat {
		case "text":
			s.log = slog.New(slog.NewTextHandler(s.ios.ErrOut, o))
		case "json":
			s.log = slog.New(slog.NewJSONHandler(s.ios.ErrOut, o))
		default:
			s.logErr = &exitError{code: 2, msg: fmt.Sprintf("--log-format %q: want text or json", s.logFormat)}
		}
	})
	return s.log, s.logErr
}

// warn tells the user about something worth fixing that does not stop
// the command.
func (s *shared) warn(msg string) {
	if msg != "" {
		fmt.Fprintln(s.ios.ErrOut, "warning:", msg)
	}
}

// homelab loads hl.yaml: every problem is printed with its file, line and
// field path, warnings too; any error stops the command.
func (s *shared) homelab(path string) (*config.Homelab, error) {
	doc, probs, err := config.Load(path)
	if doc == nil || doc.Homelab == nil {
		if err == nil {
			err = errors.New("no document")
		}
		return nil, &exitError{code: 1, msg: fmt.Sprintf("%s: %v", path, err)}
	}
	for _, p := range probs {
		fmt.Fprintln(s.ios.ErrOut, p.String())
	}
	if err != nil {
		return nil, &exitError{code: 1, msg: path + " is invalid"}
	}
	return doc.Homelab, nil
}

// identities resolves the age identities: --age-key FILE, else
// $SOPS_AGE_KEY_FILE and $SOPS_AGE_KEY, else the identity hl init keeps
// in the user's config folder. Without any, a command that needs them
// fails with the one error text below; the others go on without (nil).
func (s *shared) identities(flag string, need bool) ([]age.Identity, error) {
	file := flag
	if file == "" {
		file = os.Getenv(secrets.EnvAgeKeyFile)
	}
	ids, err := secrets.LoadIdentities(flag)
	if errors.Is(err, secrets.ErrNoIdentities) && flag == "" {
		if def := secrets.DefaultIdentityFile(); def != "" {
			if _, serr := os.Stat(def); serr == nil {
				file = def
				ids, err = secrets.LoadIdentities(def)
			}
		}
	}
	switch {
	case err == nil:
		if file != "" {
			s.warn(credfile.Warning(file))
		}
		return ids, nil
	case errors.Is(err, secrets.ErrNoIdentities) && flag == "":
		if !need {
			return nil, nil
		}
		return nil, &exitError{code: 1, msg: fmt.Sprintf("no age identity: pass --age-key FILE, set $%s or $%s, or keep it in %s (hl secrets keygen)",
			secrets.EnvAgeKeyFile, secrets.EnvAgeKey, secrets.DefaultIdentityFile())}
	default:
		return nil, &exitError{code: 1, msg: err.Error()}
	}
}

// tokenSource says where a command reads a token from.
type tokenSource struct {
	// What names the token in messages ("the Gitea token").
	What string
	// File is the --token-file flag ("-": stdin).
	File string
	// Env are the variables tried in order when File is "".
	Env []string
	// Prompt asks on a terminal (input hidden) when nothing else gave one.
	Prompt string
}

// token reads a token from its source. Errors name only the sources the
// command actually tried; the token itself is never printed.
func (s *shared) token(src tokenSource) (string, error) {
	if src.File != "" {
		v, warning, err := credfile.Read(src.File, src.What, s.ios.In)
		if err != nil {
			return "", &exitError{code: 2, msg: err.Error()}
		}
		s.warn(warning)
		return v, nil
	}
	for _, e := range src.Env {
		if v := strings.TrimSpace(os.Getenv(e)); v != "" {
			return v, nil
		}
	}
	vars := "$" + strings.Join(src.Env, " or $")
	f, ok := s.ios.In.(*os.File)
	if src.Prompt == "" || !ok || !s.ios.IsStdinTTY() {
		return "", &exitError{code: 2, msg: fmt.Sprintf("no %s: set %s or pass --token-file", src.What, vars)}
	}
	fmt.Fprintf(s.ios.ErrOut, "%s (input hidden): ", src.Prompt)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(s.ios.ErrOut)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", src.What, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", &exitError{code: 2, msg: src.What + " is empty"}
	}
	return v, nil
}

// kube is the Kubernetes API (see internal/kubeclient for the order).
func (s *shared) kube(kubeconfig string) (*rest.Config, error) {
	cfg, err := kubeclient.Config(kubeconfig)
	if err != nil {
		return nil, &exitError{code: 2, msg: err.Error()}
	}
	if kubeconfig != "" {
		s.warn(credfile.Warning(kubeconfig))
	}
	return cfg, nil
}

// envSSHKey holds an SSH private key's content (the metal pipeline gets
// the Secret metal-rollout-ssh's key, which can only reboot a node).
const envSSHKey = "HL_METAL_SSH_KEY"

// sshSigner is the SSH key hl logs in to the nodes with: --ssh-key FILE,
// else $HL_METAL_SSH_KEY.
func (s *shared) sshSigner(file string) (ssh.Signer, error) {
	var key []byte
	switch {
	case file != "":
		v, warning, err := credfile.Read(file, "the SSH key", io.Reader(nil))
		if err != nil {
			return nil, &exitError{code: 2, msg: err.Error()}
		}
		s.warn(warning)
		key = []byte(v + "\n")
	case os.Getenv(envSSHKey) != "":
		key = []byte(os.Getenv(envSSHKey))
	default:
		return nil, &exitError{code: 2, msg: fmt.Sprintf("no SSH key: pass --ssh-key FILE or set $%s", envSSHKey)}
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		return nil, &exitError{code: 2, msg: "SSH key: " + err.Error()}
	}
	return signer, nil
}
