// Package alertmanager holds the end-to-end proof that alerts reach a
// person: delivery_test.go renders a homelab whose spec.alerting points at
// local receivers and sends alerts through a real Alertmanager (its
// harness is the testserver sub-package) configured as rendered. It has no
// code of its own: Alertmanager's configuration is rendered by the
// system/monitoring templates and checked by hl validate (validate).
package alertmanager
