// Package rotate is the bot's rotation pass: it finds the repo's overdue
// generated secrets (secrets.Scan), rotates each in a clone of the default
// branch (secrets.RotateSecret, with its copies and the consumers'
// checksum annotations), re-encrypts every file when the age recipients of
// hl.yaml changed, rotates data keys when due, and turns each change into
// a pull request through the bot's engine (bot/engine), or an issue for a
// secret only a human can rotate. What a rotation does to the files lives
// in package secrets, which `hl secrets status|rotate` use as well.
//
// Values never leave as anything but ciphertext: they are not logged, not
// put in PR bodies and not in branch names.
package rotate
