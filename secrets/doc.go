// Package secrets owns every credential hl renders: generating secret
// values, laying them out as Kubernetes Secret manifests, and encrypting
// those manifests with SOPS (age recipients) so they can be committed.
//
// # What it owns
//
//   - Generators (password, hex, base64, ed25519-ssh, bcrypt, age). All
//     randomness is read from an injected io.Reader: crypto/rand.Reader in
//     production, a seeded stream (math/rand/v2 ChaCha8) in tests, so golden
//     renders are reproducible. This includes the OpenSSH check bytes and the
//     bcrypt salt, which the package derives from the reader instead of
//     letting x/crypto read crypto/rand behind our back.
//   - Spec: the description of one Secret (name, namespace, keys with their
//     generator, rotateAfter, rotatable, consumers) and Render, which turns a
//     Spec plus the previously rendered (decrypted) Secret into the new
//     plaintext manifest, reusing existing values key by key.
//   - SOPS: Encrypt, Decrypt, Recipients, UpdateKeys (sops updatekeys),
//     Rotate (sops rotate), PlainEqual, and SopsConfig for .sops.yaml.
//   - age keys: LoadIdentities (explicit path, SOPS_AGE_KEY_FILE,
//     SOPS_AGE_KEY), GenerateIdentity and WriteIdentityFile.
//   - The lifecycle of a repo's secrets: Scan reads every SOPS file's
//     cleartext metadata (what `hl secrets status` lists and what the bot
//     schedules rotations from), RotateSecret gives a secret and its copies
//     new values and marks the workloads that read it for a restart (a
//     checksum annotation), UpdateRecipients and RotateDataKeys re-encrypt.
//     They work on a working tree; the bot's rotation pass (bot/rotate)
//     turns their edits into pull requests. Values never leave this
//     package as anything but ciphertext: they are not logged, not put in
//     PR bodies and not in branch names.
//
// # The sops file format, implemented here
//
// The sops YAML file format (the document tree with its comments, the
// AES-256-GCM value encryption, the MAC, the metadata block) is implemented
// in this package (sopstree.go, sopscrypt.go, sopsmeta.go), ported from the
// getsops/sops library at the version in go.mod. Only sops' age key source
// (github.com/getsops/sops/v3/age) is linked, to wrap and unwrap the data
// key for age recipients and to validate recipients. The library's root
// package imports its key service, which links the AWS, GCP, Azure, Vault
// and HuaweiCloud KMS SDKs and gRPC: their package initialisers cost hl
// tens of megabytes of memory at start-up, whatever the command. The
// library was also slow for hl's small files (a regexp compiled per value,
// a YAML marshal-and-parse round trip per scalar): this implementation
// compiles each rule once and batches the scalars.
//
// The library stays in the tests only, where it proves compatibility
// (compat_test.go): files we write decrypt with the library, to the bytes
// the library gives for its own encryption of the same plaintext, and
// through its CLI path (identities from SOPS_AGE_KEY_FILE); files the
// library writes, under every kind of encryption rule, decrypt here to the
// library's bytes; tampering fails in both; deps_test.go keeps the key
// service out of hl's import graph. Any sops YAML file with age keys and a
// single key group can be read, whatever its rules and value types
// (strings, numbers, booleans, timestamps, comments); files hl writes have
// encrypted_regex ^(data|stringData)$, two-space indentation and one key
// group of age keys.
//
// # File conventions
//
// Secrets live in files named *.sops.yaml. The rendered .sops.yaml has one
// creation rule for `\.sops\.ya?ml$` with `encrypted_regex:
// ^(data|stringData)$`, so only the data and stringData maps of a Secret are
// encrypted; apiVersion, kind and metadata stay readable in git diffs and in
// code review.
//
// # Metadata travels as annotations
//
// Because metadata is left in the clear, the facts the bot needs to schedule
// rotation travel as annotations on the Secret itself, not in a side file:
//
//	hl.dev/generator     JSON object: key name -> generator spec
//	hl.dev/generated-at  date the values were generated (YYYY-MM-DD, given by the caller)
//	hl.dev/rotate-after  e.g. "90d" (absent: never rotate automatically)
//	hl.dev/rotatable     "false" when the value also lives inside an app's
//	                     database, so a git change alone cannot rotate it
//	hl.dev/consumers     optional, comma separated workloads reading the Secret
//	hl.dev/copy-of       on a copy: the repo path of the secret it copies
//	hl.dev/copy-keys     on a copy: JSON object, key here -> key there
//
// The package never reads the clock for generated-at; the caller passes the
// date. The one place time.Now is used is sops' own lastmodified field, which
// sops needs as additional data for the MAC and which carries no meaning for
// hl (rotation is driven by hl.dev/generated-at).
//
// # Stability and integrity
//
// The sops MAC covers every value of the document, the cleartext metadata
// included. Editing an annotation of an encrypted file by hand (or with a
// byte-range edit) therefore breaks decryption; use `sops edit`, or re-render.
// Encryption is randomised (fresh data key, IVs and age stanzas every time),
// so re-encrypting unchanged plaintext produces a different file: callers
// keep the existing file byte for byte when PlainEqual reports true and
// Recipients still match the wanted set.
package secrets
