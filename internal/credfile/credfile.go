// Package credfile reads credentials from files the way every hl command
// does: the value trimmed, an empty file refused, and a file that other
// users of the machine can read reported (an age key or a forge token in
// a 0644 file is readable by every local account). Errors name the file,
// never its content.
package credfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// Warning says that path can be read by users other than its owner, or
// is "" when it cannot.
//
// Group read access alone is not reported for a file owned by root whose
// group is the (non-root) process's own: that is how Kubernetes hands a
// mounted Secret to a pod's user (defaultMode 0400 plus fsGroup gives
// 0440, root:fsGroup, on a read-only mount nobody can chmod), and no
// other account is in that group inside the container. A user's own file
// is always reported: a primary group may be shared.
func Warning(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	perm := fi.Mode().Perm()
	if perm&0o077 == 0 || (perm&0o007 == 0 && perm&0o020 == 0 && ownGroup(fi)) {
		return ""
	}
	return fmt.Sprintf("%s can be read by other users (mode %04o): chmod 600 %s", path, perm, path)
}

// Read returns the trimmed content of path ("-" reads one line of stdin)
// and the Warning for it. what names the credential in errors ("the Gitea
// token").
func Read(path, what string, stdin io.Reader) (value, warning string, err error) {
	var raw string
	if path == "-" {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", "", fmt.Errorf("read %s from stdin: %w", what, err)
		}
		raw = line
	} else {
		b, err := os.ReadFile(path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return "", "", fmt.Errorf("read %s: %s does not exist", what, path)
			}
			return "", "", fmt.Errorf("read %s: %w", what, err)
		}
		raw, warning = string(b), Warning(path)
	}
	value = strings.TrimSpace(raw)
	if value == "" {
		where := path
		if path == "-" {
			where = "stdin"
		}
		return "", warning, fmt.Errorf("%s from %s is empty", what, where)
	}
	return value, warning, nil
}
