package validate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// scanRepoFiles looks at every file of the repository (internal/repofs:
// hidden folders included) for plaintext Secrets and credentials, whether
// an app deploys the file or not: git publishes a leaked Secret in
// notes/, in a hidden folder, next to a kustomization that does not list
// it or in a chart's templates as surely as a deployed one. It reports
// under the policies of the app checks (plaintext-secret, and
// default-credential for weak values), so a downgrade in hl.yaml applies
// to both, and leaves out what those checks already reported:
//
//   - Secret manifests (YAML or JSON, a v1 List's items too) with data or
//     stringData, in files no kustomization built and no plain-manifest
//     app holds (checkSecret saw those); a document with a sops block is
//     encrypted and passes when its values are ENC[...] (checkSOPS checks
//     the *.sops.yaml files, this the others);
//   - literal credentials in YAML and JSON files that are not manifests,
//     chart values.yaml (scanValues), hl.yaml or SOPS files, such as a
//     Woodpecker pipeline's environment or a notes file;
//   - private keys (PEM, OpenSSH, PGP) and age identities in any text
//     file, and credentials in .env files; files a secretGenerator reads
//     are left to the generator's finding.
func (v *validator) scanRepoFiles() {
	generated := map[string]bool{}
	for _, k := range v.tree.kusts {
		if doc := v.kustDoc(k); doc != nil {
			for _, r := range generatorInputs(doc, "secretGenerator") {
				generated[path.Clean(path.Join(k, r.value))] = true
			}
		}
	}
	r := bufio.NewReaderSize(nil, 64<<10) // one buffer for every file
	for _, f := range v.tree.files {
		if generated[f] {
			continue
		}
		docs := v.docs(f)
		if strings.HasSuffix(f, ".json") {
			docs = v.readJSON(f)
		}
		if len(docs) > 0 && !v.vendored(f) {
			v.scanSecretDocs(f, docs)
			if !v.credentialsChecked(f) {
				var plain []*yamlDoc
				for _, d := range docs {
					if m, ok := d.value.(map[string]any); !ok || !looksLikeManifest(m) {
						plain = append(plain, d)
					}
				}
				v.scanCredentials(f, plain, "a file of the repo")
			}
		}
		v.scanText(r, f)
	}
}

// vendored reports whether f is inside a wrapper chart's charts/ folder
// (an upstream chart: its defaults are not the repo's values).
func (v *validator) vendored(f string) bool {
	c := v.tree.chartOf(f)
	if c == "" {
		return false
	}
	return strings.HasPrefix(f, strings.TrimPrefix(c+"/", "./")+"charts/")
}

// deployedAsObjects reports whether checkObject saw f's manifests as
// committed objects: kustomize built from it, or it is a plain-manifest
// app's file (the rule of plainObjects).
func (v *validator) deployedAsObjects(f string) bool {
	if v.consumed[f] {
		return true
	}
	return isPlainManifestFile(f, v.s.configRel) && !v.tree.chartOwns(f) && v.tree.kustOf(path.Dir(f)) == ""
}

// credentialsChecked reports whether another check owns f's credentials.
func (v *validator) credentialsChecked(f string) bool {
	if f == v.s.configRel || f == ".sops.yaml" || isSOPSFile(f) || isKustomizationName(path.Base(f)) {
		return true
	}
	for _, c := range v.tree.charts {
		if f == path.Join(c, "values.yaml") {
			return true
		}
	}
	return false
}

// readJSON parses a JSON file as YAML (a superset); nil when it does not
// parse (JSON syntax is no policy of hl validate).
func (v *validator) readJSON(f string) []*yamlDoc {
	data, err := os.ReadFile(filepath.Join(v.s.dir, filepath.FromSlash(f)))
	if err != nil {
		return nil
	}
	docs, err := parseYAML(data)
	if err != nil {
		return nil
	}
	return docs
}

// scanSecretDocs flags Secrets with plaintext data in f's documents.
func (v *validator) scanSecretDocs(f string, docs []*yamlDoc) {
	deployed := v.deployedAsObjects(f)
	for _, d := range docs {
		m, ok := d.value.(map[string]any)
		if !ok {
			continue
		}
		if _, sops := m["sops"].(map[string]any); sops {
			if !isSOPSFile(f) && mapStr(m, "kind") == "Secret" {
				v.checkSOPSValues(f, d)
			}
			continue
		}
		if deployed {
			continue
		}
		items := splitList(m)
		for i, item := range items {
			if mapStr(item, "kind") != "Secret" || !strings.HasPrefix(mapStr(item, "apiVersion"), "v1") {
				continue
			}
			p := []string{}
			if len(items) > 1 || mapGet(m, "items") != nil {
				p = []string{"items", fmt.Sprintf("[%d]", i)}
			}
			for _, field := range []string{"data", "stringData"} {
				if !literalValues(mapMap(item, field)) {
					continue
				}
				v.add(Finding{Policy: PolicyPlaintextSecret, File: f, Line: lineOf(d.root, append(p, field)),
					Resource: "Secret/" + mapStr(item, "metadata", "name"), Path: joinPath(append(p, field)),
					Message: "Secret is committed unencrypted (no app deploys this file, but git publishes it); encrypt it with SOPS into a *.sops.yaml file, or delete it and rotate the values"})
				break
			}
		}
	}
}

// literalValues reports whether a Secret's data holds a value that is
// neither empty nor a template expression (a chart's templates/).
func literalValues(m map[string]any) bool {
	for _, val := range m {
		if s, ok := val.(string); ok && s != "" && !strings.Contains(s, "{{") {
			return true
		}
	}
	return false
}

// privateKeyRe matches the first line of an unencrypted private key: PEM
// (PKCS#1, SEC 1, PKCS#8), OpenSSH and PGP. "ENCRYPTED PRIVATE KEY"
// (encrypted PKCS#8) does not match; an encrypted PKCS#1 key is told by
// its Proc-Type header (see scanText).
var privateKeyRe = regexp.MustCompile(`-----BEGIN ((RSA|DSA|EC|OPENSSH|PGP) )?PRIVATE KEY( BLOCK)?-----`)

// ageKeyRe matches an age identity (X25519 or the post-quantum hybrid):
// it decrypts every SOPS file of the repo.
var ageKeyRe = regexp.MustCompile(`AGE-SECRET-KEY-(PQ-)?1[02-9AC-HJ-NP-Z]{20,}`)

// binarySniff is how much of a file is looked at for a NUL byte, git's
// own rule for telling binary files.
const binarySniff = 8000

// scanText scans a text file line by line for private keys, age
// identities and (in .env files) credentials. Binary files are skipped;
// so is a file that already has a plaintext-secret finding (a key in a
// plaintext Secret is one leak, reported once).
func (v *validator) scanText(r *bufio.Reader, f string) {
	if v.hasFinding(f, PolicyPlaintextSecret) {
		return
	}
	file, err := os.Open(filepath.Join(v.s.dir, filepath.FromSlash(f)))
	if err != nil {
		return // read errors are step 1's to report
	}
	defer file.Close()
	r.Reset(file)
	if head, _ := r.Peek(binarySniff); bytes.IndexByte(head, 0) >= 0 {
		return
	}
	env := isDotenv(f)
	pemLine := 0 // line of a BEGIN ... PRIVATE KEY whose next line may say it is encrypted
	for line := 1; ; line++ {
		text, err := readLine(r)
		if err != nil {
			break
		}
		if pemLine != 0 {
			if !bytes.HasPrefix(bytes.TrimSpace(text), []byte("Proc-Type: 4,ENCRYPTED")) {
				v.add(Finding{Policy: PolicyPlaintextSecret, File: f, Line: pemLine,
					Message: "private key in plain text; encrypt it with SOPS or keep it out of the repo (and replace it: git keeps it)"})
			}
			pemLine = 0
		}
		switch {
		case privateKeyRe.Match(text):
			pemLine = line
		case ageKeyRe.Match(text):
			v.add(Finding{Policy: PolicyPlaintextSecret, File: f, Line: line,
				Message: "age identity in plain text: it decrypts every SOPS file of the repo; delete it, rotate the age key (hl secrets) and re-encrypt"})
		case env:
			v.scanEnvLine(f, line, text)
		}
	}
	if pemLine != 0 {
		v.add(Finding{Policy: PolicyPlaintextSecret, File: f, Line: pemLine,
			Message: "private key in plain text; encrypt it with SOPS or keep it out of the repo (and replace it: git keeps it)"})
	}
}

// readLine reads one line without its newline; a line longer than the
// reader's buffer comes in pieces (each scanned on its own).
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return line, nil
	}
	if err == io.EOF && len(line) > 0 {
		err = nil
	}
	return bytes.TrimRight(line, "\r\n"), err
}

// isDotenv: .env, .env.local, app.env (a kustomize envs file); not the
// .example, .sample, .template or .dist files that document one.
func isDotenv(f string) bool {
	base := path.Base(f)
	for _, s := range []string{".example", ".sample", ".template", ".dist"} {
		if strings.HasSuffix(base, s) {
			return false
		}
	}
	return base == ".env" || strings.HasPrefix(base, ".env.") || strings.HasSuffix(base, ".env")
}

// scanEnvLine checks one KEY=value line of a .env file.
func (v *validator) scanEnvLine(f string, line int, text []byte) {
	s := strings.TrimSpace(string(text))
	if s == "" || strings.HasPrefix(s, "#") {
		return
	}
	s = strings.TrimPrefix(s, "export ")
	key, val, ok := strings.Cut(s, "=")
	key = strings.TrimSpace(key)
	if !ok || !credentialKey(key) {
		return
	}
	val = strings.TrimSpace(val)
	if len(val) >= 2 && (val[0] == '"' || val[0] == '\'') && strings.LastIndexByte(val, val[0]) > 0 {
		val = val[1:strings.LastIndexByte(val, val[0])]
	} else if i := strings.Index(val, " #"); i >= 0 {
		val = strings.TrimSpace(val[:i])
	}
	if val == "" || envRefRe.MatchString(val) || placeholderRe.MatchString(val) || strings.HasPrefix(val, "ENC[") {
		return
	}
	fd := Finding{Policy: PolicyPlaintextSecret, File: f, Line: line, Path: key,
		Message: "credential in plain text in an env file; encrypt it with SOPS or keep the file out of the repo"}
	if why := weakCredential(val, true); why != "" {
		fd.Policy, fd.Message = PolicyDefaultCredential, "credential "+why
	}
	v.add(fd)
}

// hasFinding reports whether f already has a finding of policy.
func (v *validator) hasFinding(f, policy string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, x := range v.findings {
		if x.File == f && x.Policy == policy {
			return true
		}
	}
	return false
}
