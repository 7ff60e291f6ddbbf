// Package metal is hl's PXE controller and node lifecycle: it serves the
// rendered metal/ tree of a homelab repo to machines booting from the
// network (`hl metal serve`), keeps the pinned netboot images in a
// content-addressed cache (`hl metal images pull`), marks nodes for
// reinstall (`hl metal reprovision`) and rolls a merged metal change out
// node by node (`hl metal rollout`).
//
// # Boot flow
//
// dnsmasq (DHCP in proxy or full mode, TFTP for the iPXE binaries) points
// every PXE client at /boot.ipxe, which chains /ipxe/<mac>. The answer
// depends on the node's state: a known MAC marked for install gets its
// rendered metal/nodes/<name>/boot.ipxe (kernel + initrd of the pinned OS
// image, preseed or kickstart URL), an installed MAC gets a local-boot
// script, an unknown MAC gets a script saying so and nothing else. The
// installer's post-install step POSTs /callback/<mac> with the node's
// install token, which flips the MAC to local boot: a node never loops into
// a reinstall. `hl metal reprovision` (or the API behind `hl metal
// rollout`) flips it back.
//
// # Why dnsmasq and not DHCP/TFTP in Go
//
// The PXE part of DHCP is where firmware quirks live (proxy-DHCP on port
// 4011, PXE boot menus, UEFI clients that only talk to the boot server,
// option 43 encodings). dnsmasq has handled those for fifteen years and its
// config is the readable, reviewable artefact the repo already renders
// (metal/dnsmasq.conf), exercised for real by the QEMU end-to-end test. An
// embedded Go implementation would need raw broadcast sockets, root and a
// second, less proven implementation of the same protocol. `hl metal serve`
// therefore runs dnsmasq as a child with the rendered config plus the
// host-specific options (TFTP root, lease file, interface), folds its log
// into the access log, and stops it when it stops.
//
// # Secrets
//
// The repo never holds a token in plain text. Rendered node files carry
// placeholders (@@HL_K3S_TOKEN@@, @@HL_CALLBACK_TOKEN@@) that the server
// replaces when serving, after decrypting metal/secrets/*.sops.yaml with its
// age identity. A node's install token is HMAC-SHA256(metal-callback-key,
// MAC); the k3s config (which holds the join token) and the post-install
// script are only served to a request bearing it, and every node file is
// only served while that node is marked for install.
//
// # State
//
// Per-MAC install state lives in one small JSON file (state.json) written
// atomically under an flock, so the server, `hl metal reprovision` on the
// same host and a restart all see the same truth. The server re-reads it on
// every request that needs it.
package metal
