package secrets

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
	"golang.org/x/crypto/blowfish"
	"golang.org/x/crypto/ssh"
)

// Kind names a generator.
type Kind string

// Generator kinds.
const (
	// KindPassword: Length characters drawn uniformly from Charset.
	KindPassword Kind = "password"
	// KindHex: Length random bytes, hex encoded (2*Length characters).
	KindHex Kind = "hex"
	// KindBase64: Length random bytes, standard base64 with padding
	// (what `openssl rand -base64 N` prints).
	KindBase64 Kind = "base64"
	// KindEd25519SSH: an OpenSSH ed25519 private key (PEM) in <key> and its
	// authorized_keys line in <key>.pub.
	KindEd25519SSH Kind = "ed25519-ssh"
	// KindBcrypt: a password (Length, Charset) in <key> and its bcrypt hash
	// in <key>-hash.
	KindBcrypt Kind = "bcrypt"
	// KindAge: an age X25519 identity (AGE-SECRET-KEY-1...) in <key> and its
	// recipient (age1...) in <key>.pub.
	KindAge Kind = "age"
	// KindLiteral: the fixed, non-secret Value (a username, a URL) that an
	// app wants inside the same Secret as its credentials.
	KindLiteral Kind = "literal"
)

// Suffixes of the keys derived from a multi-output generator.
const (
	HashSuffix   = "-hash" // bcrypt hash next to the password
	PublicSuffix = ".pub"  // ssh authorized_keys line, age recipient
)

// Charset selects the alphabet of password and bcrypt generators.
type Charset string

// Charsets.
const (
	CharsetAlnum        Charset = "alnum"         // A-Z a-z 0-9 (the default)
	CharsetAlnumSymbols Charset = "alnum+symbols" // alnum plus SymbolChars
	CharsetCustom       Charset = "custom"        // the bytes of Generator.Chars
)

// Alphabets of the predefined charsets.
const (
	AlnumChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	// SymbolChars avoids quotes, backslash, '$', '`', whitespace and the
	// characters that end a YAML plain scalar or a shell word. Passwords that
	// end up unescaped inside URLs should use alnum.
	SymbolChars = "!#%+-.=?@^_~"
)

// Defaults and limits.
const (
	DefaultPasswordLength = 32
	DefaultByteLength     = 32 // hex and base64
	DefaultBcryptCost     = 10
	MaxLength             = 4096
	maxBcryptPassword     = 72 // bcrypt ignores (x/crypto rejects) longer input
	minBcryptCost         = 4
	maxBcryptCost         = 31
)

// Generator describes how one key's value is produced. Its JSON form is what
// the hl.dev/generator annotation records per key.
type Generator struct {
	Kind Kind `json:"kind" yaml:"kind"`
	// Length: characters for password and bcrypt, random bytes for hex and
	// base64; 0 means the default. Must be 0 for ed25519-ssh and age.
	Length int `json:"length,omitempty" yaml:"length,omitempty"`
	// Charset for password and bcrypt; "" means alnum.
	Charset Charset `json:"charset,omitempty" yaml:"charset,omitempty"`
	// Chars is the alphabet when Charset is custom: distinct printable ASCII
	// characters, at least two.
	Chars string `json:"chars,omitempty" yaml:"chars,omitempty"`
	// Cost is the bcrypt cost (4..31); 0 means DefaultBcryptCost.
	Cost int `json:"cost,omitempty" yaml:"cost,omitempty"`
	// HashKey names the key bcrypt writes the hash to (default
	// <key>-hash): Argo CD, for one, wants the hash under a fixed name.
	HashKey string `json:"hashKey,omitempty" yaml:"hashKey,omitempty"`
	// User makes bcrypt write an htpasswd line "user:hash" instead of the
	// bare hash (htpasswd files, as zot reads them).
	User string `json:"user,omitempty" yaml:"user,omitempty"`
	// Value is the fixed value of a literal.
	Value string `json:"value,omitempty" yaml:"value,omitempty"`
}

// Outputs returns the secret keys that a generator for key name fills, the
// primary key first.
func (g Generator) Outputs(name string) []string {
	switch g.Kind {
	case KindBcrypt:
		return []string{name, g.hashKey(name)}
	case KindEd25519SSH, KindAge:
		return []string{name, name + PublicSuffix}
	}
	return []string{name}
}

func (g Generator) hashKey(name string) string {
	if g.HashKey != "" {
		return g.HashKey
	}
	return name + HashSuffix
}

// Validate reports whether g is a usable generator spec.
func (g Generator) Validate() error {
	if g.Kind != KindBcrypt && (g.HashKey != "" || g.User != "") {
		return fmt.Errorf("hashKey and user are only valid for bcrypt")
	}
	if g.Kind != KindLiteral && g.Value != "" {
		return fmt.Errorf("value is only valid for literal")
	}
	if strings.ContainsAny(g.User, ":\n") {
		return fmt.Errorf("bcrypt user %q may not contain ':' or a newline", g.User)
	}
	switch g.Kind {
	case KindLiteral:
		if g.Value == "" || g.Length != 0 || g.Charset != "" || g.Chars != "" || g.Cost != 0 {
			return fmt.Errorf("literal takes only a non-empty value")
		}
		return nil
	case KindPassword, KindBcrypt:
		if _, err := g.alphabet(); err != nil {
			return err
		}
		if g.Kind == KindBcrypt {
			if g.length() > maxBcryptPassword {
				return fmt.Errorf("bcrypt password length %d exceeds bcrypt's limit of %d bytes", g.length(), maxBcryptPassword)
			}
			if g.Cost != 0 && (g.Cost < minBcryptCost || g.Cost > maxBcryptCost) {
				return fmt.Errorf("bcrypt cost %d outside %d..%d", g.Cost, minBcryptCost, maxBcryptCost)
			}
		} else if g.Cost != 0 {
			return fmt.Errorf("cost is only valid for bcrypt")
		}
	case KindHex, KindBase64:
		if g.Charset != "" || g.Chars != "" || g.Cost != 0 {
			return fmt.Errorf("%s takes only a length (in bytes)", g.Kind)
		}
	case KindEd25519SSH, KindAge:
		if g.Length != 0 || g.Charset != "" || g.Chars != "" || g.Cost != 0 {
			return fmt.Errorf("%s takes no length, charset or cost", g.Kind)
		}
	case "":
		return errors.New("generator kind is empty")
	default:
		return fmt.Errorf("unknown generator kind %q", g.Kind)
	}
	if g.Length < 0 || g.Length > MaxLength {
		return fmt.Errorf("length %d outside 0..%d", g.Length, MaxLength)
	}
	return nil
}

func (g Generator) length() int {
	if g.Length != 0 {
		return g.Length
	}
	switch g.Kind {
	case KindHex, KindBase64:
		return DefaultByteLength
	}
	return DefaultPasswordLength
}

func (g Generator) cost() int {
	if g.Cost != 0 {
		return g.Cost
	}
	return DefaultBcryptCost
}

func (g Generator) alphabet() (string, error) {
	switch g.Charset {
	case "", CharsetAlnum:
		if g.Chars != "" {
			return "", errors.New("chars requires charset custom")
		}
		return AlnumChars, nil
	case CharsetAlnumSymbols:
		if g.Chars != "" {
			return "", errors.New("chars requires charset custom")
		}
		return AlnumChars + SymbolChars, nil
	case CharsetCustom:
		if len(g.Chars) < 2 {
			return "", errors.New("custom charset needs at least two characters")
		}
		var seen [256]bool
		for i := 0; i < len(g.Chars); i++ {
			c := g.Chars[i]
			if c < 0x21 || c > 0x7e {
				return "", fmt.Errorf("custom charset: %q is not printable ASCII", c)
			}
			if seen[c] {
				// A repeated character would be picked twice as often.
				return "", fmt.Errorf("custom charset: %q appears twice", c)
			}
			seen[c] = true
		}
		return g.Chars, nil
	}
	return "", fmt.Errorf("unknown charset %q", g.Charset)
}

// Generate produces the values of key name (see Outputs for the keys a
// multi-output kind fills), reading all randomness from r.
func (g Generator) Generate(name string, r io.Reader) (map[string]string, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	out := make(map[string]string, 2)
	switch g.Kind {
	case KindPassword:
		alpha, _ := g.alphabet()
		pw, err := randomString(r, alpha, g.length())
		if err != nil {
			return nil, err
		}
		out[name] = pw
	case KindHex:
		b, err := readBytes(r, g.length())
		if err != nil {
			return nil, err
		}
		out[name] = hex.EncodeToString(b)
	case KindBase64:
		b, err := readBytes(r, g.length())
		if err != nil {
			return nil, err
		}
		out[name] = base64.StdEncoding.EncodeToString(b)
	case KindBcrypt:
		alpha, _ := g.alphabet()
		pw, err := randomString(r, alpha, g.length())
		if err != nil {
			return nil, err
		}
		h, err := bcryptHash(r, pw, g.cost())
		if err != nil {
			return nil, err
		}
		out[name], out[g.hashKey(name)] = pw, g.htpasswd(h)
	case KindLiteral:
		out[name] = g.Value
	case KindEd25519SSH:
		priv, pub, err := sshKey(r)
		if err != nil {
			return nil, err
		}
		out[name], out[name+PublicSuffix] = priv, pub
	case KindAge:
		id, rcpt, err := ageIdentity(r)
		if err != nil {
			return nil, err
		}
		out[name], out[name+PublicSuffix] = id, rcpt
	}
	return out, nil
}

// derive recomputes the derived outputs of key name from an existing primary
// value, so a Secret whose derived key went missing (or drifted) is repaired
// without changing the primary value. For bcrypt an existing hash is kept
// (re-hashing would change it, and verifying costs a full bcrypt); only a
// missing hash is computed.
func (g Generator) derive(name, primary string, existing map[string]string, r io.Reader) (map[string]string, error) {
	out := map[string]string{name: primary}
	switch g.Kind {
	case KindBcrypt:
		if h, ok := existing[g.hashKey(name)]; ok {
			out[g.hashKey(name)] = h
			break
		}
		if len(primary) > maxBcryptPassword {
			return nil, fmt.Errorf("existing value of %q is longer than bcrypt's %d byte limit", name, maxBcryptPassword)
		}
		h, err := bcryptHash(r, primary, g.cost())
		if err != nil {
			return nil, err
		}
		out[g.hashKey(name)] = g.htpasswd(h)
	case KindLiteral:
		out[name] = g.Value // the declaration, not the file, is the truth
	case KindEd25519SSH:
		k, err := ssh.ParsePrivateKey([]byte(primary))
		if err != nil {
			return nil, fmt.Errorf("existing value of %q is not an OpenSSH private key: %w", name, err)
		}
		out[name+PublicSuffix] = authorizedKey(k.PublicKey())
	case KindAge:
		id, err := age.ParseX25519Identity(strings.TrimSpace(primary))
		if err != nil {
			return nil, fmt.Errorf("existing value of %q is not an age identity: %w", name, err)
		}
		out[name+PublicSuffix] = id.Recipient().String()
	}
	return out, nil
}

func readBytes(r io.Reader, n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("reading randomness: %w", err)
	}
	return b, nil
}

// randomString picks n characters uniformly from alpha (at most 256 distinct
// bytes) by rejection sampling: a random byte b is used only when
// b < 256 - 256%len(alpha), so b%len(alpha) has no modulo bias.
func randomString(r io.Reader, alpha string, n int) (string, error) {
	size := len(alpha)
	limit := 256 - 256%size
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/4+8)
	for len(out) < n {
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", fmt.Errorf("reading randomness: %w", err)
		}
		for _, b := range buf {
			if int(b) >= limit {
				continue
			}
			out = append(out, alpha[int(b)%size])
			if len(out) == n {
				break
			}
		}
	}
	return string(out), nil
}

// sshKey returns an unencrypted OpenSSH ed25519 private key (PEM) and its
// authorized_keys line. ssh.MarshalPrivateKey reads its check bytes from
// crypto/rand, so the (small, stable) openssh-key-v1 layout is written here
// with the check bytes taken from r. Tests parse the result with
// x/crypto/ssh.
func sshKey(r io.Reader) (privPEM, pubLine string, err error) {
	seed, err := readBytes(r, ed25519.SeedSize)
	if err != nil {
		return "", "", err
	}
	checkBytes, err := readBytes(r, 4)
	if err != nil {
		return "", "", err
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	check := binary.BigEndian.Uint32(checkBytes)

	pubBlob := ssh.Marshal(struct {
		KeyType string
		Pub     []byte
	}{ssh.KeyAlgoED25519, pub})
	block := ssh.Marshal(struct {
		Check1  uint32
		Check2  uint32
		Keytype string
		Pub     []byte
		Priv    []byte
		Comment string
	}{check, check, ssh.KeyAlgoED25519, pub, priv, ""})
	// Pad the private block to the cipher block size (8 for "none") with
	// 1, 2, 3, ... as PROTOCOL.key requires.
	for i := byte(1); len(block)%8 != 0; i++ {
		block = append(block, i)
	}
	body := ssh.Marshal(struct {
		CipherName   string
		KdfName      string
		KdfOpts      string
		NumKeys      uint32
		PubKey       []byte
		PrivKeyBlock []byte
	}{"none", "none", "", 1, pubBlob, block})
	pemBytes := pem.EncodeToMemory(&pem.Block{
		Type:  "OPENSSH PRIVATE KEY",
		Bytes: append([]byte("openssh-key-v1\x00"), body...),
	})
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", "", err
	}
	return string(pemBytes), authorizedKey(sshPub), nil
}

func authorizedKey(k ssh.PublicKey) string {
	return strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(k)), "\n")
}

// bcrypt, with the salt read from r. x/crypto/bcrypt only offers
// GenerateFromPassword, which salts from crypto/rand; this is the same
// algorithm ($2a$, as x/crypto emits) built from x/crypto/blowfish, and tests
// verify every hash with bcrypt.CompareHashAndPassword.
var (
	bcryptMagic    = []byte("OrpheanBeholderScryDoubt")
	bcryptEncoding = base64.NewEncoding("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789").WithPadding(base64.NoPadding)
)

func bcryptHash(r io.Reader, password string, cost int) (string, error) {
	if cost < minBcryptCost || cost > maxBcryptCost {
		return "", fmt.Errorf("bcrypt cost %d outside %d..%d", cost, minBcryptCost, maxBcryptCost)
	}
	salt, err := readBytes(r, 16)
	if err != nil {
		return "", err
	}
	// C bcrypt implementations hash the key including its trailing NUL.
	key := append([]byte(password), 0)
	c, err := blowfish.NewSaltedCipher(key, salt)
	if err != nil {
		return "", err
	}
	for i := uint64(0); i < 1<<uint(cost); i++ {
		blowfish.ExpandKey(key, c)
		blowfish.ExpandKey(salt, c)
	}
	data := append([]byte(nil), bcryptMagic...)
	for i := 0; i < len(data); i += 8 {
		for j := 0; j < 64; j++ {
			c.Encrypt(data[i:i+8], data[i:i+8])
		}
	}
	// Only 23 of the 24 bytes are encoded (compatibility with C bcrypt).
	return fmt.Sprintf("$2a$%02d$%s%s", cost, bcryptEncoding.EncodeToString(salt), bcryptEncoding.EncodeToString(data[:23])), nil
}

// ageIdentity returns an X25519 identity and its recipient. The scalar comes
// from r (age.GenerateX25519Identity reads crypto/rand); the Bech32 string is
// checked by parsing it back with age.
func ageIdentity(r io.Reader) (identity, recipient string, err error) {
	scalar, err := readBytes(r, 32)
	if err != nil {
		return "", "", err
	}
	s := strings.ToUpper(bech32Encode("age-secret-key-", scalar))
	id, err := age.ParseX25519Identity(s)
	if err != nil {
		return "", "", fmt.Errorf("internal error encoding age identity: %w", err)
	}
	return s, id.Recipient().String(), nil
}

// bech32Encode implements BIP-173 Bech32 (no length limit, as age uses it)
// for a lower-case hrp.
func bech32Encode(hrp string, data []byte) string {
	const charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
	// Regroup 8-bit bytes into 5-bit groups, zero padded.
	var values []byte
	acc, bits := uint32(0), uint(0)
	for _, b := range data {
		acc = acc<<8 | uint32(b)
		bits += 8
		for bits >= 5 {
			bits -= 5
			values = append(values, byte(acc>>bits)&31)
		}
	}
	if bits > 0 {
		values = append(values, byte(acc<<(5-bits))&31)
	}
	// Checksum over the expanded hrp, the data and six zero groups.
	var in []byte
	for i := 0; i < len(hrp); i++ {
		in = append(in, hrp[i]>>5)
	}
	in = append(in, 0)
	for i := 0; i < len(hrp); i++ {
		in = append(in, hrp[i]&31)
	}
	in = append(in, values...)
	in = append(in, 0, 0, 0, 0, 0, 0)
	gen := [5]uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}
	chk := uint32(1)
	for _, v := range in {
		top := chk >> 25
		chk = (chk&0x1ffffff)<<5 ^ uint32(v)
		for i := 0; i < 5; i++ {
			if (top>>uint(i))&1 == 1 {
				chk ^= gen[i]
			}
		}
	}
	chk ^= 1
	var sb strings.Builder
	sb.WriteString(hrp)
	sb.WriteByte('1')
	for _, v := range values {
		sb.WriteByte(charset[v])
	}
	for i := 0; i < 6; i++ {
		sb.WriteByte(charset[(chk>>uint(5*(5-i)))&31])
	}
	return sb.String()
}

// htpasswd formats a bcrypt hash as the generator asks: bare, or as an
// htpasswd line for User.
func (g Generator) htpasswd(hash string) string {
	if g.User == "" {
		return hash
	}
	return g.User + ":" + hash
}
