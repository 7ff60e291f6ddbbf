// Package kubeclient resolves the Kubernetes API credentials of every hl
// command the same way: $HL_KUBECONFIG (the kubeconfig's content, as a
// pipeline secret carries it), an explicit --kubeconfig file, the
// in-cluster service account, then client-go's default loading rules
// ($KUBECONFIG, ~/.kube/config).
package kubeclient

import (
	"errors"
	"fmt"
	"os"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// EnvKubeconfig holds a kubeconfig's content.
const EnvKubeconfig = "HL_KUBECONFIG"

// Config returns the REST config for path ("" for the defaults above).
func Config(path string) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	switch {
	case os.Getenv(EnvKubeconfig) != "":
		cfg, err = clientcmd.RESTConfigFromKubeConfig([]byte(os.Getenv(EnvKubeconfig)))
	case path != "":
		cfg, err = clientcmd.BuildConfigFromFlags("", path)
	default:
		cfg, err = rest.InClusterConfig()
		if errors.Is(err, rest.ErrNotInCluster) {
			rules := clientcmd.NewDefaultClientConfigLoadingRules()
			cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return cfg, nil
}

// Clientset is Config's typed client.
func Clientset(path string) (kubernetes.Interface, error) {
	cfg, err := Config(path)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}
