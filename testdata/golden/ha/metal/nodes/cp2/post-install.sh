#!/bin/sh
# Post-install of cp2 (server): runs inside the freshly installed
# debian 13 at the end of the unattended install (preseed late_command).
# It finishes the OS setup, stages k3s v1.36.5+k3s1 for the first boot and
# tells hl metal serve the install is done, so the next PXE boot of this
# machine boots its disk. Any failure stops the install before that callback.
# hl metal serve serves this file once per token, to the node's address,
# inside its install window, and fills in fresh single-use tokens: one for
# each file fetched below and one for the callback. None of them outlives
# the window, and none releases anything twice (but to the node's retry of
# an answer the server died before sending).
set -eu
HL_URL='http://172.16.10.2:8080'
NODE='cp2'
MAC='52:54:00:10:00:02'
# Every request to hl metal serve retries for about three minutes, on any
# error: the machine serving the install may lose power or restart
# mid-answer, and a token it burnt before the answer left is taken once
# more by its next run (the node's retry carries the same token).
RETRY='--retry 36 --retry-delay 5 --retry-all-errors --connect-timeout 10'
# fetch TOKEN FILE DEST: FILE of this node, with the token minted for it.
fetch() {
	curl -fsS $RETRY -H "Authorization: Bearer $1" -o "$3" "$HL_URL/nodes/$NODE/$2"
}

# Admin access: user "hl", SSH keys only, sudo without a password (it has
# none); root stays locked and sshd refuses root and passwords.
install -d -m 700 -o hl -g hl /home/hl/.ssh
: > /home/hl/.ssh/authorized_keys
printf '%s\n' 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBrrNnO6ES1fjcsZpjIeu89t/Ks17zrxqWfKRjw/Wcxc admin@homelab' >> /home/hl/.ssh/authorized_keys
printf '%s\n' 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC6jbetxbp3eof0Aj31M3uJxtuN+4ZA34QwawtArMBUq laptop' >> /home/hl/.ssh/authorized_keys
# The metal pipeline's key (platform/woodpecker/secrets/metal-rollout-ssh;
# hl metal serve fills in its public half): it can reboot this node and
# nothing else — no shell, no forwarding, whatever command it asks for.
printf '%s\n' 'restrict,command="sudo systemctl reboot" @@HL_METAL_ROLLOUT_KEY@@' >> /home/hl/.ssh/authorized_keys
chown hl:hl /home/hl/.ssh/authorized_keys
chmod 600 /home/hl/.ssh/authorized_keys
echo 'hl ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/hl
chmod 440 /etc/sudoers.d/hl
passwd -l root
mkdir -p /etc/ssh/sshd_config.d
cat > /etc/ssh/sshd_config.d/10-hl.conf <<'SSHD'
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
SSHD

# Static address 172.16.10.12 on the interface with MAC $MAC.
IP='172.16.10.12'
GATEWAY='172.16.10.1'
IFACE=''
if [ -z "$IFACE" ]; then
	IFACE=$(ip -o link | awk -v mac="$MAC" 'tolower($0) ~ mac { sub(/:$/, "", $2); sub(/@.*/, "", $2); print $2; exit }')
fi
CIDR='172.16.10.0/24'
PREFIX=${CIDR#*/}
cat > /etc/network/interfaces <<NET
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback

allow-hotplug $IFACE
iface $IFACE inet static
	address $IP/$PREFIX
	gateway $GATEWAY
NET
: > /etc/resolv.conf
printf 'nameserver %s\n' '172.16.10.1' >> /etc/resolv.conf

# AppArmor on (Debian's kernel default, made explicit) with its tools, so
# k3s' containerd confines containers with its default profile.
systemctl enable apparmor
if ! grep -q 'apparmor=1' /etc/default/grub; then
	sed -i 's/^GRUB_CMDLINE_LINUX="\(.*\)"/GRUB_CMDLINE_LINUX="\1 apparmor=1 security=apparmor"/' /etc/default/grub
	update-grub
fi

# Unattended security updates (kured reboots the node when one needs it).
cat > /etc/apt/apt.conf.d/20auto-upgrades <<'APT'
APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "1";
APT
systemctl enable unattended-upgrades

# k3s: its config (with the join token, fetched once with its single-use
# token), the kube-vip static pod holding the API VIP, and a
# first-boot unit installing k3s v1.36.5+k3s1 as server.
install -d -m 700 /etc/rancher/k3s
fetch '@@HL_TOKEN:k3s-config.yaml@@' k3s-config.yaml /etc/rancher/k3s/config.yaml
chmod 600 /etc/rancher/k3s/config.yaml
install -d -m 755 /var/lib/rancher/k3s/agent/pod-manifests
fetch '@@HL_TOKEN:kube-vip.yaml@@' kube-vip.yaml /var/lib/rancher/k3s/agent/pod-manifests/kube-vip.yaml
cat > /etc/systemd/system/hl-k3s-install.service <<'UNIT'
[Unit]
Description=hl: install k3s v1.36.5+k3s1 (server) on first boot
Wants=network-online.target
After=network-online.target
ConditionPathExists=!/usr/local/bin/k3s

[Service]
Type=oneshot
RemainAfterExit=yes
Restart=on-failure
RestartSec=30
Environment=INSTALL_K3S_VERSION=v1.36.5+k3s1
Environment=INSTALL_K3S_EXEC=server
ExecStart=/bin/sh -c 'curl -fsSL --retry 10 -o /run/hl-k3s-install.sh https://raw.githubusercontent.com/k3s-io/k3s/v1.36.5+k3s1/install.sh && sh /run/hl-k3s-install.sh'

[Install]
WantedBy=multi-user.target
UNIT
systemctl enable hl-k3s-install.service

# Done: report the install (with the new SSH host key, which hl metal
# rollout pins when it reboots this node) so the next PXE boot is local.
# The callback token closes the install window; a retry of it (the answer
# lost) is answered as recorded.
HOSTKEY=$(cat /etc/ssh/ssh_host_ed25519_key.pub 2>/dev/null || true)
curl -fsS $RETRY -X POST -H 'Authorization: Bearer @@HL_TOKEN:callback@@' --data-urlencode "hostKey=$HOSTKEY" "$HL_URL/callback/$MAC"
