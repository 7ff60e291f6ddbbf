# hl's build, test and benchmark entry points. `make test` is what CI runs.
GO        ?= go
FUZZTIME  ?= 20s
BENCHTIME ?= 1s
# hl needs no cgo, and a cgo build links kustomize's plugin loader in
# dynamic mode (every symbol exported, ~9 MiB more RSS at start): build and
# test as the container image ships (scripts/build-gitea.sh turns cgo on
# for Gitea's SQLite itself).
export CGO_ENABLED ?= 0
# Every build and test compiles with -trimpath, as the release image's hl
# is built: the tests, the binaries tests build and the image then share
# one build cache instead of compiling the Kubernetes stack twice.
export GOFLAGS := $(strip $(GOFLAGS) -trimpath)

.PHONY: all build test unit loop fuzz lint vet fmt schema bench gitea kube argocd alertmanager image-base image-base-host image tidy clean e2e-pxe e2e chaos

all: build

build:
	$(GO) build -o bin/hl ./cmd/hl

## test: everything CI checks — lint, the whole suite, the QEMU PXE boot
## and the loop test (each alone, so neither is starved), a bounded fuzz
## run. The test servers (gitea kube image-base-host alertmanager argocd)
## build in the background meanwhile; a test that needs one not built yet
## waits for it (scripts/test.sh).
test:
	MAKE="$(MAKE)" bash scripts/test.sh

## unit: the whole suite but the QEMU PXE boot and the loop test (the
## servers built first, or building: see test). 60m: under `make test` on
## a cold machine a package may wait half an hour for its server's build.
unit:
	$(GO) test -count=1 -timeout 60m -skip '^TestE2EPXE$$' ./...

## e2e: the rendered repo as deployed (root): the hl-bot Deployment and
## every Woodpecker step whose image is hl, run as rendered from hl's image
## against the real Gitea, Helm repositories and OCI registry. `unit` runs
## them too.
e2e: gitea kube image-base-host
	$(GO) test -count=1 -timeout 30m ./e2e/...

## loop: the loop test alone (root): hl init --defaults, render, hl
## bootstrap cluster against the real API server with the Gitea harness as
## the in-cluster forge, the real Argo CD syncing every Application, the
## bot run as rendered opening upgrade and rotation PRs, the validate
## pipeline step run as rendered, merge, Argo CD applying it through
## Gitea's push webhook; then broken links (credential, age recipient,
## pipeline branch) caught. Behind the build tag `loop` so that `unit`
## does not run it beside every other package; `make test` runs it alone.
loop: gitea kube argocd image-base-host
	$(GO) test -tags loop -count=1 -timeout 40m -run '^TestLoop$$' -v ./e2e/loop

## chaos: the chaos journeys with many seeds (`make test` runs a fixed
## few): hl render SIGKILLed twice at seeded moments, then run to the end;
## hl bootstrap gitea SIGKILLed at seeded moments (and inside its
## first push) then re-run, against the real Gitea, and with Gitea itself
## killed and restarted mid-run; hl bootstrap cluster
## through a fault proxy in front of the real API server, which is also
## killed and restarted mid-run; hl bot run (the upgrade pass) through a
## fault proxy in front of the real Gitea and Helm repository, and with
## Gitea killed and restarted mid-run; the rotation pass through a fault
## proxy in front of the real Gitea; hl bot serve as rendered (root: it
## runs from hl's image) SIGKILLed mid-run with Gitea, the chart
## repositories and the registry behind fault proxies; the chart pulls of
## hl validate through fault proxies; hl metal serve SIGKILLed after it
## burnt a node's token and before the answer left, at every step of the
## install chain. CHAOS_RUNS
## seeds (default 50), CHAOS_BASE shifts them, CHAOS_DURATION keeps
## drawing seeds that long; every failing seed is printed, CHAOS_SEED=N
## replays it.
CHAOS_RUNS ?= 50
CHAOS_TESTS = ^(TestRenderKilledAnywhere|TestBootstrapKilledAndRerun|TestBootstrapKilledDuringFirstPush|TestBootstrapGiteaKilledAndRestarted|TestBootstrapClusterUnderChaos|TestBotRunUnderChaos|TestBotRunGiteaKilledAndRestarted|TestPassUnderChaos|TestBotServeUnderChaos|TestPullChartsUnderChaos|TestServeKilledMidAnswer)$$
chaos: gitea kube image-base-host
	CHAOS_RUNS=$(CHAOS_RUNS) $(GO) test -count=1 -timeout 120m -v -run '$(CHAOS_TESTS)' ./generator ./bootstrap ./bot/run ./bot/rotate ./e2e ./validate ./metal

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/config

lint: vet
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) mod tidy -diff

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

## schema: regenerate schemas/hl.schema.json from the config types.
schema:
	$(GO) run ./cmd/hl schema > schemas/hl.schema.json

## gitea: build the real Gitea used by integration tests (cached by version).
gitea:
	bash scripts/build-gitea.sh

## kube: build the real etcd and kube-apiserver used by integration tests
## (cached by version; kube-apiserver takes tens of minutes when cold).
kube:
	bash scripts/build-kube.sh

## argocd: build the real Argo CD (one multi-call binary) and the helm and
## kustomize its repo-server runs, used by integration tests (cached by
## version; the argocd binary takes tens of minutes when cold).
argocd:
	bash scripts/build-argocd.sh

## alertmanager: build the real Alertmanager the alert-delivery test sends
## through (cached by version; under a minute warm, a few minutes cold).
alertmanager:
	bash scripts/build-alertmanager.sh

## image-base: the Debian root file systems hl's image is layered on
## (root; Debian packages debootstrap and, for arm64 on amd64,
## qemu-user-static; cached by recipe in .cache/image-base).
IMAGE_ARCHES ?= amd64 arm64
image-base:
	bash scripts/build-image-base.sh $(IMAGE_ARCHES)

## image-base-host: the base for this machine's architecture only, what
## the tests of release/ and internal/asrendered build the image from.
image-base-host:
	bash scripts/build-image-base.sh $$($(GO) env GOARCH)

## image: a release as a tag builds it (release/cmd/hl-release): binaries,
## archives, SHA256SUMS and the multi-arch image as an OCI layout in
## .cache/release (push: the release pipeline, .woodpecker/release.yaml).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
image: image-base
	rm -rf .cache/release
	$(GO) run ./release/cmd/hl-release --version $(VERSION) --arch $(shell echo $(IMAGE_ARCHES) | tr ' ' ,) --out .cache/release

bench: gitea kube argocd image-base-host
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

tidy:
	$(GO) mod tidy

clean:
	rm -rf bin

## e2e-pxe: the QEMU PXE end-to-end test alone (root; Debian packages
## dnsmasq qemu-system-x86 ipxe-qemu debian-installer-13-netboot-amd64;
## .ci/run installs them).
## `make unit` runs it too (go test ./...).
e2e-pxe:
	HL_E2E_PXE_TIMEOUT=$${HL_E2E_PXE_TIMEOUT:-8m} $(GO) test -count=1 -timeout 15m -run '^TestE2EPXE$$' -v ./metal
