package metal

import (
	"context"
	"errors"
	"fmt"
	"net"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// K3sKubeconfigCommand prints the admin kubeconfig k3s writes on a server
// (root-only), as the nodes' admin user.
const K3sKubeconfigCommand = "sudo cat /etc/rancher/k3s/k3s.yaml"

// KubeconfigOptions say where the admin kubeconfig comes from.
type KubeconfigOptions struct {
	// Dir is the rendered repo (metal/nodes.yaml).
	Dir string
	// State holds the host keys the nodes reported at install; SSH pins
	// them unless it is given known_hosts or told to skip the check.
	State StateFile
	SSH   SSH
	// Name names the cluster, user and context (the homelab's name).
	Name string
}

// Kubeconfig fetches the admin kubeconfig from the first server over SSH
// and points it at the control plane's address — the VIP when the cluster
// has one (kube-vip holds it, and the servers' certificates carry it as a
// SAN), else the first server's IP — instead of k3s's 127.0.0.1. Cluster,
// user and context are renamed from k3s's "default" to Name. The result is
// the kubeconfig's bytes; writing it (0600) is the caller's.
func Kubeconfig(ctx context.Context, o KubeconfigOptions) ([]byte, error) {
	idx, err := LoadIndex(o.Dir)
	if err != nil {
		return nil, err
	}
	var first *Node
	for i, n := range idx.Nodes {
		if n.Role == "server" && (first == nil || n.FirstServer) {
			first = &idx.Nodes[i]
		}
	}
	if first == nil {
		return nil, fmt.Errorf("%s has no server node", IndexFile)
	}
	st, err := o.State.Load()
	if err != nil {
		return nil, err
	}
	ns := st.Node(first.MAC, first.Name)
	if ns.Status != StatusInstalled && !o.SSH.Insecure && o.SSH.KnownHosts == "" {
		return nil, fmt.Errorf("%s has not called back installed yet (status %s): no host key to trust; wait for its install, or pass --ssh-known-hosts", first.Name, ns.Status)
	}
	raw, err := o.SSH.Run(ctx, *first, ns.HostKey, K3sKubeconfigCommand)
	if err != nil {
		return nil, fmt.Errorf("fetch the kubeconfig from %s: %w", first.Name, err)
	}
	cfg, err := clientcmd.Load(raw)
	if err != nil {
		return nil, fmt.Errorf("%s's %s is not a kubeconfig: %w", first.Name, "/etc/rancher/k3s/k3s.yaml", err)
	}
	host := first.IP
	if idx.ControlPlaneVIP != "" {
		host = idx.ControlPlaneVIP
	}
	return retarget(cfg, "https://"+net.JoinHostPort(host, "6443"), o.Name)
}

// retarget points every cluster of cfg at server and renames the one
// cluster, user and context k3s writes to name.
func retarget(cfg *clientcmdapi.Config, server, name string) ([]byte, error) {
	if len(cfg.Clusters) != 1 || len(cfg.AuthInfos) != 1 {
		return nil, errors.New("k3s's kubeconfig should hold one cluster and one user")
	}
	out := clientcmdapi.NewConfig()
	for _, c := range cfg.Clusters {
		if len(c.CertificateAuthorityData) == 0 {
			return nil, errors.New("k3s's kubeconfig has no certificate authority")
		}
		c.Server = server
		out.Clusters[name] = c
	}
	for _, u := range cfg.AuthInfos {
		if len(u.ClientCertificateData) == 0 && u.Token == "" {
			return nil, errors.New("k3s's kubeconfig has no credentials")
		}
		out.AuthInfos[name] = u
	}
	out.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	out.CurrentContext = name
	return clientcmd.Write(*out)
}
