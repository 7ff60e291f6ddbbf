package validate

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// unit kinds: how an app folder is rendered.
const (
	unitChart     = "chart"
	unitKustomize = "kustomize"
	unitDir       = "dir"
)

// unit is one app: a wrapper chart, a root kustomization or a folder of
// plain manifests.
type unit struct {
	kind string
	// dir is the repo-relative folder.
	dir string
	// namespace Argo CD deploys the app into (destination.namespace), if
	// known.
	namespace string
}

func (u *unit) String() string { return u.dir }

// object is one manifest: from a file in the repo or rendered.
type object struct {
	u *unit
	// file and line locate the object (or its chart/kustomization).
	file string
	line int
	// node is the object's YAML in file, for field lines; nil when the
	// object is rendered from something else (then every field is at line).
	node *yaml.Node
	// source names the Helm template or kustomize origin.
	source string
	obj    map[string]any

	apiVersion, kind, namespace, name string
	// sops: the document carries SOPS metadata (encrypted).
	sops bool
	// cluster: the kind is cluster-scoped (set by the validator).
	cluster bool
	// committed: the object's content is committed as is in the repo
	// (plain files, kustomize inputs and generators), as opposed to made up
	// by a chart's templates.
	committed bool
}

func newObject(u *unit, file string, doc *yamlDoc, m map[string]any) *object {
	o := &object{u: u, file: file, obj: m, line: 1}
	if doc != nil {
		o.node = doc.root
		o.line = doc.line()
	}
	o.apiVersion, _ = m["apiVersion"].(string)
	o.kind, _ = m["kind"].(string)
	o.namespace = mapStr(m, "metadata", "namespace")
	o.name = mapStr(m, "metadata", "name")
	if o.name == "" {
		o.name = mapStr(m, "metadata", "generateName")
	}
	_, o.sops = m["sops"].(map[string]any)
	return o
}

// group of the object's apiVersion ("" for the core group).
func (o *object) group() string {
	if i := strings.IndexByte(o.apiVersion, '/'); i >= 0 {
		return o.apiVersion[:i]
	}
	return ""
}

// version of the object's apiVersion.
func (o *object) version() string {
	if i := strings.IndexByte(o.apiVersion, '/'); i >= 0 {
		return o.apiVersion[i+1:]
	}
	return o.apiVersion
}

// ns is the namespace the object lands in: its own, else its app's.
func (o *object) ns() string {
	if o.cluster {
		return ""
	}
	if o.namespace != "" {
		return o.namespace
	}
	if o.u != nil {
		return o.u.namespace
	}
	return ""
}

// id is Kind/namespace/name, or Kind/name without a namespace.
func (o *object) id() string {
	if ns := o.ns(); ns != "" && !o.cluster {
		return fmt.Sprintf("%s/%s/%s", o.kind, ns, o.name)
	}
	return o.kind + "/" + o.name
}

// lineOf is the line of field path (dotted, [i] indices) in the object's
// file, or the object's line.
func (o *object) lineOf(path string) int {
	if o.node == nil || path == "" {
		return o.line
	}
	if l := lineOf(o.node, splitPath(path)); l > 0 {
		return l
	}
	return o.line
}

// finding makes a finding about field path of the object.
func (o *object) finding(policy, path, format string, args ...any) Finding {
	return Finding{
		Policy:   policy,
		File:     o.file,
		Line:     o.lineOf(path),
		Resource: o.id(),
		Path:     path,
		Source:   o.source,
		Message:  fmt.Sprintf(format, args...),
	}
}

// clusterScopedKinds are the built-in kinds without a namespace, by
// group/Kind.
var clusterScopedKinds = map[string]bool{
	"/Namespace": true, "/Node": true, "/PersistentVolume": true, "/ComponentStatus": true,
	"rbac.authorization.k8s.io/ClusterRole": true, "rbac.authorization.k8s.io/ClusterRoleBinding": true,
	"apiextensions.k8s.io/CustomResourceDefinition": true, "apiregistration.k8s.io/APIService": true,
	"storage.k8s.io/StorageClass": true, "storage.k8s.io/CSIDriver": true, "storage.k8s.io/CSINode": true,
	"storage.k8s.io/VolumeAttachment": true, "storage.k8s.io/VolumeAttributesClass": true,
	"scheduling.k8s.io/PriorityClass": true, "node.k8s.io/RuntimeClass": true,
	"admissionregistration.k8s.io/MutatingWebhookConfiguration":     true,
	"admissionregistration.k8s.io/ValidatingWebhookConfiguration":   true,
	"admissionregistration.k8s.io/ValidatingAdmissionPolicy":        true,
	"admissionregistration.k8s.io/ValidatingAdmissionPolicyBinding": true,
	"admissionregistration.k8s.io/MutatingAdmissionPolicy":          true,
	"admissionregistration.k8s.io/MutatingAdmissionPolicyBinding":   true,
	"networking.k8s.io/IngressClass":                                true, "networking.k8s.io/IPAddress": true, "networking.k8s.io/ServiceCIDR": true,
	"certificates.k8s.io/CertificateSigningRequest": true, "certificates.k8s.io/ClusterTrustBundle": true,
	"flowcontrol.apiserver.k8s.io/FlowSchema": true, "flowcontrol.apiserver.k8s.io/PriorityLevelConfiguration": true,
	"resource.k8s.io/DeviceClass": true, "resource.k8s.io/ResourceSlice": true,
	"policy/PodSecurityPolicy": true, "storagemigration.k8s.io/StorageVersionMigration": true,
	"internal.apiserver.k8s.io/StorageVersion": true,
}
