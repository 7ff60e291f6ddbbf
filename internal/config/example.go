package config

import _ "embed"

//go:embed example.yaml
var example []byte

// Example returns the embedded example hl.yaml.
func Example() []byte { return append([]byte(nil), example...) }
