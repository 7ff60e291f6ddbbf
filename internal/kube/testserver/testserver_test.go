package testserver_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"hl.dev/hl/internal/kube/testserver"
)

func TestMain(m *testing.M) { testserver.Main(m) }

func clientset(t *testing.T, cfg *rest.Config) *kubernetes.Clientset {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("kubernetes.NewForConfig: %v", err)
	}
	return cs
}

func createNamespace(t *testing.T, cs kubernetes.Interface, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := cs.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

func TestServerVersion(t *testing.T) {
	srv := testserver.ForTest(t)
	v, err := clientset(t, srv.RESTConfig()).Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("ServerVersion: %v", err)
	}
	if want := "v" + testserver.KubernetesVersion; v.GitVersion != want {
		t.Errorf("GitVersion = %q, want %q (built without the component-base/version ldflags?)", v.GitVersion, want)
	}
}

// The kubeconfig is what code under test gets (--kubeconfig); it must
// verify the serving certificate, not skip verification.
func TestKubeconfig(t *testing.T) {
	srv := testserver.ForTest(t)
	fi, err := os.Stat(srv.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("kubeconfig mode = %o, want 600", perm)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", srv.Kubeconfig)
	if err != nil {
		t.Fatalf("load kubeconfig: %v", err)
	}
	if cfg.Insecure || len(cfg.CAData) == 0 || cfg.Host != srv.URL {
		t.Errorf("kubeconfig: host %q insecure=%v CA %d bytes, want %q verified by a CA", cfg.Host, cfg.Insecure, len(cfg.CAData), srv.URL)
	}
	review, err := clientset(t, cfg).AuthenticationV1().SelfSubjectReviews().Create(t.Context(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SelfSubjectReview with the kubeconfig: %v", err)
	}
	if u := review.Status.UserInfo; u.Username != testserver.AdminUser || !slices.Contains(u.Groups, "system:masters") {
		t.Errorf("kubeconfig user = %q in %v, want %q in system:masters", u.Username, u.Groups, testserver.AdminUser)
	}

	// The same server without its CA must fail the TLS handshake.
	noCA := srv.RESTConfig()
	noCA.CAData = nil
	if _, err := clientset(t, noCA).Discovery().ServerVersion(); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("client without the CA: err = %v, want a certificate verification error", err)
	}
}

func TestCreateNamespace(t *testing.T) {
	srv := testserver.ForTest(t)
	cs := clientset(t, srv.RESTConfig())
	name := srv.UniqueName("created")
	createNamespace(t, cs, name)
	got, err := cs.CoreV1().Namespaces().Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get namespace: %v", err)
	}
	if got.Status.Phase != corev1.NamespaceActive {
		t.Errorf("namespace phase = %q, want Active", got.Status.Phase)
	}
	// The namespace lifecycle admission plugin is on: nothing goes into a
	// namespace that does not exist.
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}
	_, err = cs.CoreV1().ConfigMaps(srv.UniqueName("missing")).Create(t.Context(), cm, metav1.CreateOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("create in a missing namespace: err = %v, want NotFound", err)
	}
}

// widgetCRD has a CEL rule, the kind of check only a real API server
// makes (hl validate --server relies on it).
const widgetCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.%[1]s
spec:
  group: %[1]s
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [min, max]
            properties:
              min: {type: integer}
              max: {type: integer}
            x-kubernetes-validations:
            - rule: self.min <= self.max
              message: min must not exceed max
`

func TestCRDEstablishedAndValidated(t *testing.T) {
	srv := testserver.ForTest(t)
	ctx := t.Context()
	group := srv.UniqueName("widgets") + ".test.hl.dev"
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(fmt.Appendf(nil, widgetCRD, group), &crd); err != nil {
		t.Fatalf("decode CRD: %v", err)
	}
	ext, err := apiextensions.NewForConfig(srv.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, &crd, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create CRD: %v", err)
	}
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		got, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range got.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("CRD %s not Established: %v", crd.Name, err)
	}

	ns := srv.UniqueName("widgets")
	createNamespace(t, clientset(t, srv.RESTConfig()), ns)
	dyn, err := dynamic.NewForConfig(srv.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	widgets := dyn.Resource(schema.GroupVersionResource{Group: group, Version: "v1", Resource: "widgets"}).Namespace(ns)
	widget := func(name string, min, max int64) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": group + "/v1",
			"kind":       "Widget",
			"metadata":   map[string]any{"name": name},
			"spec":       map[string]any{"min": min, "max": max},
		}}
	}
	// Discovery of a just-Established CRD can lag a moment behind; the
	// first create is retried on NotFound only.
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := widgets.Create(ctx, widget("good", 1, 2), metav1.CreateOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		t.Fatalf("create a valid widget: %v", err)
	}
	_, err = widgets.Create(ctx, widget("bad", 3, 2), metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "min must not exceed max") {
		t.Errorf("create a widget breaking the CEL rule: err = %v, want Invalid with the rule's message", err)
	}
}

func TestServerSideApply(t *testing.T) {
	srv := testserver.ForTest(t)
	ctx := t.Context()
	cs := clientset(t, srv.RESTConfig())
	ns := srv.UniqueName("ssa")
	createNamespace(t, cs, ns)
	cms := cs.CoreV1().ConfigMaps(ns)
	apply := func(manager, value string, force bool) (*corev1.ConfigMap, error) {
		return cms.Apply(ctx, corev1ac.ConfigMap("settings", ns).WithData(map[string]string{"mode": value}),
			metav1.ApplyOptions{FieldManager: manager, Force: force})
	}

	first, err := apply("hl", "a", false)
	if err != nil {
		t.Fatalf("first apply: %v", err)
	}
	// The property hl bootstrap's idempotence check rests on: an apply that
	// changes nothing writes nothing.
	again, err := apply("hl", "a", false)
	if err != nil {
		t.Fatalf("second apply: %v", err)
	}
	if again.ResourceVersion != first.ResourceVersion {
		t.Errorf("no-op apply changed resourceVersion %s -> %s", first.ResourceVersion, again.ResourceVersion)
	}

	_, err = apply("someone-else", "b", false)
	if !apierrors.IsConflict(err) {
		t.Fatalf("apply by another manager: err = %v, want a field conflict", err)
	}
	forced, err := apply("someone-else", "b", true)
	if err != nil {
		t.Fatalf("forced apply: %v", err)
	}
	if forced.Data["mode"] != "b" {
		t.Errorf("after forced apply mode = %q, want b", forced.Data["mode"])
	}
	var managers []string
	for _, mf := range forced.ManagedFields {
		if mf.Operation == metav1.ManagedFieldsOperationApply {
			managers = append(managers, mf.Manager)
		}
	}
	if len(managers) != 1 || managers[0] != "someone-else" {
		t.Errorf("apply managers after the forced apply = %v, want just someone-else", managers)
	}
}

// RBAC denies what is not granted, for a static-token user in a group and
// for a service account; a RoleBinding grants exactly its namespace.
func TestRBACDeniesNonAdmin(t *testing.T) {
	srv := testserver.New(t, testserver.Options{
		ExtraTokens: []testserver.Token{{User: "alice", Groups: []string{"hl-viewers"}}},
	})
	ctx := t.Context()
	admin := clientset(t, srv.RESTConfig())
	createNamespace(t, admin, "granted")
	createNamespace(t, admin, "other")

	// Its own Role, not the view ClusterRole: view is aggregated, and with
	// no controller-manager nothing fills in its rules.
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "read-configmaps", Namespace: "granted"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch"}}},
	}
	if _, err := admin.RbacV1().Roles("granted").Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Role: %v", err)
	}

	alice, err := srv.TokenFor("alice")
	if err != nil {
		t.Fatal(err)
	}
	saToken, err := srv.ServiceAccountToken(ctx, "granted", "bot")
	if err != nil {
		t.Fatal(err)
	}
	users := []struct {
		name, token string
		subject     rbacv1.Subject
		wantUser    string
		wantGroup   string
	}{
		{"static token in a group", alice.Value, rbacv1.Subject{Kind: rbacv1.GroupKind, Name: "hl-viewers"}, "alice", "hl-viewers"},
		{"service account", saToken, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "bot", Namespace: "granted"}, "system:serviceaccount:granted:bot", "system:serviceaccounts:granted"},
	}
	for i, u := range users {
		t.Run(u.name, func(t *testing.T) {
			cs := clientset(t, srv.ConfigFor(u.token))
			review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("SelfSubjectReview: %v", err)
			}
			if got := review.Status.UserInfo; got.Username != u.wantUser || !slices.Contains(got.Groups, u.wantGroup) || slices.Contains(got.Groups, "system:masters") {
				t.Fatalf("authenticated as %q in %v, want %q in %s and not in system:masters", got.Username, got.Groups, u.wantUser, u.wantGroup)
			}
			if _, err := cs.CoreV1().ConfigMaps("granted").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
				t.Fatalf("list configmaps before any binding: err = %v, want Forbidden", err)
			}

			binding := &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("read-configmaps-%d", i), Namespace: "granted"},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "read-configmaps"},
				Subjects:   []rbacv1.Subject{u.subject},
			}
			if _, err := admin.RbacV1().RoleBindings("granted").Create(ctx, binding, metav1.CreateOptions{}); err != nil {
				t.Fatalf("create RoleBinding: %v", err)
			}
			// RBAC reads bindings from an informer: wait until it sees this one.
			err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
				_, err := cs.CoreV1().ConfigMaps("granted").List(ctx, metav1.ListOptions{})
				return err == nil, nil
			})
			if err != nil {
				t.Fatalf("list configmaps in the bound namespace never allowed: %v", err)
			}
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("nope-%d", i)}}
			if _, err := cs.CoreV1().ConfigMaps("granted").Create(ctx, cm, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
				t.Errorf("create with read rights: err = %v, want Forbidden", err)
			}
			if _, err := cs.CoreV1().Secrets("granted").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
				t.Errorf("list secrets with configmap rights: err = %v, want Forbidden", err)
			}
			if _, err := cs.CoreV1().ConfigMaps("other").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
				t.Errorf("list configmaps in another namespace: err = %v, want Forbidden", err)
			}
		})
	}
}

// The chaos tests kill kube-apiserver; etcd keeps the state, and the
// restarted server has the same URL, certificate and tokens.
func TestRestartKeepsData(t *testing.T) {
	srv := testserver.New(t, testserver.Options{
		ExtraTokens: []testserver.Token{{User: "bob"}},
	})
	ctx := t.Context()
	admin := clientset(t, srv.RESTConfig())
	createNamespace(t, admin, "kept")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "state"}, Data: map[string]string{"k": "v"}}
	before, err := admin.CoreV1().ConfigMaps("kept").Create(ctx, cm, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	srv.KillAPIServer()
	if _, err := admin.CoreV1().ConfigMaps("kept").Get(ctx, "state", metav1.GetOptions{}); err == nil {
		t.Fatal("API server still answers after KillAPIServer")
	}
	if err := srv.StartAPIServer(ctx); err != nil {
		t.Fatalf("StartAPIServer: %v", err)
	}
	if err := srv.StartAPIServer(ctx); err == nil {
		t.Error("StartAPIServer while running: no error")
	}

	// The kubeconfig written at the first start still verifies the server.
	cfg, err := clientcmd.BuildConfigFromFlags("", srv.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	after, err := clientset(t, cfg).CoreV1().ConfigMaps("kept").Get(ctx, "state", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get configmap after restart: %v", err)
	}
	if after.UID != before.UID || after.Data["k"] != "v" {
		t.Errorf("after restart: uid %s data %v, want uid %s data k=v", after.UID, after.Data, before.UID)
	}

	if err := srv.Restart(ctx); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	bob, err := srv.TokenFor("bob")
	if err != nil {
		t.Fatal(err)
	}
	review, err := clientset(t, srv.ConfigFor(bob.Value)).AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("static token after a second restart: %v", err)
	}
	if review.Status.UserInfo.Username != "bob" {
		t.Errorf("static token after restart authenticates as %q, want bob", review.Status.UserInfo.Username)
	}
}

func TestBadExtraTokens(t *testing.T) {
	const secret = "s3cr3t-value-never-printed"
	tests := []struct {
		name   string
		tokens []testserver.Token
		want   string
	}{
		{"empty user", []testserver.Token{{Groups: []string{"g"}}}, "ExtraTokens[0].User: empty"},
		{"admin's name", []testserver.Token{{User: testserver.AdminUser}}, "ExtraTokens[0].User: \"hl-admin\" is already the admin's"},
		{"twice", []testserver.Token{{User: "a"}, {User: "a"}}, "ExtraTokens[1].User: \"a\" is already ExtraTokens[0]'s"},
		{"comma in group", []testserver.Token{{User: "a", Groups: []string{"x", "y,z"}}}, "ExtraTokens[0].Groups[1]: \"y,z\""},
		{"quote in uid", []testserver.Token{{User: "a", UID: `u"1`}}, "ExtraTokens[0].UID:"},
		{"space in value", []testserver.Token{{User: "a", Value: secret + " x"}}, "ExtraTokens[0].Value: holds"},
		{"same value", []testserver.Token{{User: "a", Value: secret}, {User: "b", Value: secret}}, "ExtraTokens[1].Value: same token as ExtraTokens[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Binaries that do not exist: the tokens are checked first, so
			// nothing starts and no folder is made.
			_, err := testserver.Start(t.Context(), testserver.Options{
				APIServerBinary: "/nonexistent/kube-apiserver",
				EtcdBinary:      "/nonexistent/etcd",
				ExtraTokens:     tt.tokens,
			})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error prints the token value: %v", err)
			}
		})
	}
}

func TestTokenForUnknownUser(t *testing.T) {
	srv := testserver.ForTest(t)
	if _, err := srv.TokenFor("nobody"); err == nil || !strings.Contains(err.Error(), "Options.ExtraTokens") {
		t.Errorf("TokenFor(nobody): err = %v, want a hint at Options.ExtraTokens", err)
	}
	admin, err := srv.TokenFor(testserver.AdminUser)
	if err != nil || admin.Value != srv.Token {
		t.Errorf("TokenFor(admin) = value match %v, err %v; want the admin token", admin.Value == srv.Token, err)
	}
}

func TestMissingBinaryFailsWithHint(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{testserver.EnvAPIServer, testserver.EnvEtcd} {
		t.Run(env, func(t *testing.T) {
			// The other binary exists (any executable will do), so the
			// error is about this one.
			t.Setenv(testserver.EnvAPIServer, self)
			t.Setenv(testserver.EnvEtcd, self)
			t.Setenv(env, t.TempDir()+"/nope")
			_, err := testserver.Start(t.Context(), testserver.Options{})
			if !errors.Is(err, testserver.ErrNoBinary) {
				t.Fatalf("Start with missing %s: err = %v, want ErrNoBinary", env, err)
			}
			for _, want := range []string{"make kube", env} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
	t.Run("cache", func(t *testing.T) {
		t.Setenv(testserver.EnvAPIServer, "")
		t.Setenv(testserver.EnvEtcd, "")
		t.Setenv(testserver.EnvCache, t.TempDir())
		for _, f := range []func() (string, error){testserver.APIServerBinary, testserver.EtcdBinary} {
			if _, err := f(); !errors.Is(err, testserver.ErrNoBinary) {
				t.Errorf("empty %s: err = %v, want ErrNoBinary", testserver.EnvCache, err)
			}
		}
	})
}

// BenchmarkStart measures a cold start of a fresh control plane (etcd,
// kube-apiserver to /readyz, the default namespaces); run with
// -bench Start -benchtime 3x.
func BenchmarkStart(b *testing.B) {
	for b.Loop() {
		srv, err := testserver.Start(b.Context(), testserver.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := srv.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
