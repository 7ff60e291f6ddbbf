// Package testserver owns the real Gitea used by hl's tests: it finds the
// cached binary built by scripts/build-gitea.sh (make gitea), writes an
// app.ini for a throw-away instance (sqlite, loopback, free port, nothing that
// reaches the network), starts `gitea web`, creates the admin user and an
// all-scopes admin token, and removes everything again on Close.
//
// One server per test package is the usual pattern:
//
//	func TestMain(m *testing.M) { testserver.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		srv := testserver.ForTest(t)
//		client, _ := gitea.NewClient(srv.URL, gitea.SetToken(srv.AdminToken))
//		...
//	}
//
// A missing binary fails the test (with a hint to run `make gitea`); it never
// skips, so a CI run without the binary cannot pass by accident.
package testserver
