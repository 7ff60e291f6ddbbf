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
// depends on the node's state: a known MAC to be installed, asking from
// its address, gets its rendered metal/nodes/<name>/boot.ipxe (kernel +
// initrd of the pinned OS image, install config URL), an installed MAC
// gets a local-boot script, an unknown MAC gets a script saying so and
// nothing else. The installer's post-install step POSTs /callback/<mac>,
// which flips the MAC to local boot: a node never loops into a reinstall.
// `hl metal reprovision` (or the API behind `hl metal rollout`) flips it
// back.
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
// # Secrets and install windows
//
// The repo never holds a token in plain text. The k3s tokens live in
// metal/secrets/*.sops.yaml; rendered node files carry placeholders
// (@@HL_K3S_TOKEN@@ for servers, @@HL_K3S_AGENT_TOKEN@@ for everyone) that
// the server fills when it serves the file to the installing node. Agents
// get the agent token only (k3s: servers run with agent-token, agents join
// with it as their token), so root on a worker cannot join as a server.
//
// Secrets leave the server only inside an install window, only to the
// address the node must come from, and once. A window is opened
// explicitly, by one of:
//
//   - hl metal reprovision (locally or through the API): the window opens
//     at once. The operator, or hl metal rollout, then reboots the node.
//   - the first PXE boot of a node in metal/nodes.yaml that the state has
//     never seen: the window opens when that MAC asks /ipxe/<mac> from its
//     expected address (below), not when the server starts. Starting the
//     server with an empty state therefore releases nothing to anyone; the
//     window opens at the one moment a real first install begins, and is
//     as short as an install. Opening it earlier (at start) would leave
//     every uninstalled node's join token reachable for as long as the
//     server runs before the machines are powered on; requiring a manual
//     reprovision for every first install would make `hl up` a two-step
//     chore without closing the gap that matters (whoever answers from
//     that address first wins either way).
//
// A window closes on the installer's callback or after --install-timeout
// (default 60 minutes); a window that ran out is "expired" and only
// reprovision opens a new one: the first-boot rule applies once.
//
// Inside a window the installer walks a chain of random single-use tokens
// (crypto/rand, 256 bits, stored in the state file as SHA-256 only). Each
// served file carries fresh tokens for the next step only, as
// @@HL_TOKEN:<file>@@ placeholders the server fills: boot.ipxe (served on
// the address alone) → the install config (preseed or kickstart, token in
// the URL path because the installer cannot send a header) →
// post-install.sh → the k3s config, kube-vip and the callback. A token is
// burnt when used; a file holding a secret is served once per window (a
// second boot inside the window after that gets local boot and a hint to
// reprovision); the callback closes the window, and the SSH host key it
// reports is pinned only from that request. So the preseed and kickstart,
// which the installer fetches with nothing but its kernel command line,
// hold no secret and no token that releases one.
//
// Requests are bound to the node's address: in full DHCP mode with hl's
// dnsmasq, the address in dnsmasq's lease for the node's MAC (which the
// rendered config pins to spec.metal.nodes[].ip); otherwise the node's
// configured address in metal/nodes.yaml. In proxy DHCP mode the router
// hands out addresses and hl never sees the lease, so the router must
// reserve each node's configured address for its MAC. The alternative,
// binding a window to whichever address asks first, would let any
// machine that polls /ipxe/<mac> win the race for the whole chain the
// moment a window opens; a reservation costs one router setting per node
// and leaves an attacker with ARP spoofing of a specific address at a
// specific time. Address binding on a LAN is a speed bump, not
// authentication (see the security notes): what holds is that everything
// is single-use and short-lived, so a theft shows as a failed install.
//
// # State
//
// Per-MAC install state lives in one small JSON file (state.json, mode
// 0600, token hashes only) written atomically under an flock, so the
// server, `hl metal reprovision` on the same host and a restart all see
// the same truth. The server re-reads it on every request that needs it,
// and every token check-and-burn happens in one locked update.
package metal
