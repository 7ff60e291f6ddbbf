// Package testserver owns the real Alertmanager hl's tests send alerts
// through: it finds the binary scripts/build-alertmanager.sh builds from
// the github.com/prometheus/alertmanager module (make alertmanager), runs
// it on a free loopback port with a configuration file the test gives
// (clustering off, storage in a temporary folder), waits until it is
// ready, posts alerts through its v2 API and stops it on Close.
//
//	srv := testserver.ForTest(t, testserver.Options{Config: text})
//	srv.PostAlerts(ctx, testserver.Alert{Labels: map[string]string{"alertname": "X"}})
//
// A missing binary fails the test (with a hint to run `make alertmanager`);
// it never skips, so a CI run without the binary cannot pass by accident.
package testserver
