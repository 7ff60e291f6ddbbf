// Package dirindex reads the folders an HTTP server's directory index
// lists (Apache, nginx and Go's http.FileServer pages), with the
// modification time when the page prints one.
package dirindex

import (
	"bufio"
	"bytes"
	"regexp"
	"time"
)

// Folder is one sub-folder of an index.
type Folder struct {
	Name     string
	Modified time.Time // zero when the index prints none
}

var (
	hrefRe = regexp.MustCompile(`href="([^"/?#][^"/?#]*)/"`)
	// Dates as Apache (2025-09-06 09:12) and nginx (06-Sep-2025 09:12)
	// directory indexes print them.
	isoDate   = regexp.MustCompile(`\d{4}-\d{2}-\d{2} \d{2}:\d{2}`)
	nginxDate = regexp.MustCompile(`\d{2}-[A-Z][a-z]{2}-\d{4} \d{2}:\d{2}`)
)

// Folders lists the sub-folders of the index page body whose name starts
// with a digit (versions; "current/", "../" and the like are left out),
// each once, in the page's order.
func Folders(body []byte) []Folder {
	var out []Folder
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, m := range hrefRe.FindAllStringSubmatchIndex(line, -1) {
			name := line[m[2]:m[3]]
			if seen[name] || name[0] < '0' || name[0] > '9' {
				continue
			}
			seen[name] = true
			f := Folder{Name: name}
			tail := line[m[1]:]
			if s := isoDate.FindString(tail); s != "" {
				f.Modified, _ = time.Parse("2006-01-02 15:04", s)
			} else if s := nginxDate.FindString(tail); s != "" {
				f.Modified, _ = time.Parse("02-Jan-2006 15:04", s)
			}
			out = append(out, f)
		}
	}
	return out
}
