package asrendered

import (
	"strings"
)

// defaultPath is what runc and containerd give a process whose image sets
// no PATH.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// envList is an ordered environment: a later Set of a name replaces the
// value in place, as a runtime merges a container's env over its image's.
type envList struct {
	names []string
	vals  map[string]string
}

func newEnv(image []string) *envList {
	e := &envList{vals: map[string]string{}}
	for _, kv := range image {
		k, v, _ := strings.Cut(kv, "=")
		e.Set(k, v)
	}
	return e
}

func (e *envList) Set(k, v string) {
	if _, ok := e.vals[k]; !ok {
		e.names = append(e.names, k)
	}
	e.vals[k] = v
}

func (e *envList) Get(k string) (string, bool) {
	v, ok := e.vals[k]
	return v, ok
}

func (e *envList) List() []string {
	out := make([]string, 0, len(e.names))
	for _, k := range e.names {
		out = append(out, k+"="+e.vals[k])
	}
	return out
}

// setHome gives HOME the account's home when the environment has none,
// as runc does for every container process.
func (e *envList) setHome(home string) {
	if _, ok := e.vals["HOME"]; !ok {
		e.Set("HOME", home)
	}
}

// expand replaces $(NAME) in s with NAME's value where lookup knows it,
// with Kubernetes' rules (k8s.io/kubernetes third_party expansion): $$
// is a literal $, an unknown $(NAME) stays as written, a lone $ stays.
func expand(s string, lookup func(string) (string, bool)) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch next := s[i+1]; {
		case next == '$':
			b.WriteByte('$')
			i++
		case next == '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := lookup(name); ok && name != "" {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}
