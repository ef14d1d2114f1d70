# marketplace-operator. `make help` lists the targets.

# Tools are built from the Go module proxy into ./bin, one file per version.
CONTROLLER_TOOLS_VERSION ?= v0.23.0
GOLANGCI_LINT_VERSION ?= v2.15.0
LOCALBIN ?= $(CURDIR)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)

# The release version, from one file: it stamps the binaries and the image, and `make
# version-sync` writes it into the chart's appVersion and the kustomize image tag (`make verify`
# fails when they differ). REVISION is the commit, marked -dirty when tracked files are changed.
VERSION := $(shell cat VERSION)
REVISION := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
VERSION_PKG = $(shell sed -n 's/^module //p' go.mod)/internal/version
LDFLAGS = -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Commit=$(REVISION)

# Packages of `make test`: everything but the end-to-end suite.
UNIT_PKGS = $(shell go list ./... | grep -v /test/e2e)
GO_TEST_FLAGS ?= -race -count=1 -timeout 20m

# go.mod's toolchain line (the patched Go release) is honoured even where the installed Go
# defaults to GOTOOLCHAIN=local; the toolchain comes from the Go module proxy once, then is cached.
export GOTOOLCHAIN ?= auto

SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate the CRDs and RBAC from the markers into config/.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./..." output:crd:artifacts:config=config/crd/bases

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate the deep-copy code of the API types.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./..."

.PHONY: fmt
fmt: ## Run gofmt on the code.
	gofmt -s -w $$(git ls-files --cached --others --exclude-standard '*.go')

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint (config: .golangci.yml).
	$(GOLANGCI_LINT) run ./...

.PHONY: control-plane
control-plane: ## Build etcd, kube-apiserver, kcm, scheduler, kubectl, kwok and helm (~16 min on a fresh machine, then cached).
	@hack/control-plane.sh >/dev/null

.PHONY: test
test: manifests generate fmt vet control-plane ## Run the tests (race detector, real kube-apiserver + etcd; no e2e).
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" go test $(GO_TEST_FLAGS) $(UNIT_PKGS)

.PHONY: test-e2e
test-e2e: control-plane ## Run the e2e suite on a full local cluster (kubectl and Helm installs, make dev).
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" go test -tags e2e -count=1 -timeout 30m -v ./test/e2e/

.PHONY: bench
bench: control-plane ## Measure latency, throughput, writes, memory and start-up on a local cluster (BENCH_QUICK=1: a smoke run; table in BENCH_OUT, default .bench/results.md).
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" go test -tags bench -count=1 -timeout 60m -v -run TestBench ./test/bench/

.PHONY: test-chaos
test-chaos: control-plane ## Run the resilience suite: manager SIGKILLed, leader killed, API server restarted mid-run.
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" go test -tags chaos -count=1 -timeout 30m -v ./test/chaos/

.PHONY: vulncheck
vulncheck: ## Run govulncheck with a vulnerability database built from the Go module proxy (hack/govulncheck.sh).
	hack/govulncheck.sh

.PHONY: helm-sync
helm-sync: manifests ## Copy the CRDs and the manager's RBAC rules into the Helm chart.
	hack/helm-sync.sh

# Lint at the chart's Kubernetes floor (Chart.yaml kubeVersion). The chart needs a keys Secret
# named; test/packaging renders the other value sets.
HELM_LINT_ARGS = --kube-version 1.30.0 --set keys.existingSecret=marketplace-operator-keys

.PHONY: helm-lint
helm-lint: control-plane ## Lint the Helm chart (strict) and render it.
	"$$(hack/control-plane.sh)/helm" lint --strict $(HELM_LINT_ARGS) charts/marketplace-operator
	"$$(hack/control-plane.sh)/helm" template marketplace-operator charts/marketplace-operator $(HELM_LINT_ARGS) >/dev/null

.PHONY: chart-readme
chart-readme: ## Write the Helm chart's README.md from Chart.yaml and the comments of values.yaml.
	cd hack/chart-readme && go test -count=1 ./... && go run . -chart ../../charts/marketplace-operator

.PHONY: version-sync
version-sync: ## Write VERSION into the chart's appVersion and the kustomize image tag.
	@[[ "$(VERSION)" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$$ ]] || { echo "VERSION: $(VERSION) is not MAJOR.MINOR.PATCH[-PRERELEASE]"; exit 1; }
	sed -i -E 's/^appVersion: .*/appVersion: "$(VERSION)"/' charts/marketplace-operator/Chart.yaml
	sed -i -E '/newName: marketplace-operator$$/,/newTag:/ s/newTag: .*/newTag: $(VERSION)/' config/manager/kustomization.yaml

.PHONY: verify
verify: manifests generate fmt helm-sync version-sync chart-readme ## Regenerate everything and fail if the tree changed.
	go mod tidy
	cd hack/k8s && go mod tidy
	cd hack/image && go mod tidy
	cd hack/chart-readme && go mod tidy
	@if [ -n "$$(git status --porcelain)" ]; then \
		echo "make verify: generated or formatted files differ from what is committed:"; \
		git status --porcelain; git --no-pager diff --stat; exit 1; fi

##@ Run

.PHONY: dev
dev: ## Run the operator on a local cluster with the KooGallery stand-in (ARGS=--reset starts afresh).
	hack/dev.sh $(ARGS)

##@ Build

.PHONY: build
build: ## Build the binaries into ./bin, stamped with VERSION and the commit.
	go build -ldflags "$(LDFLAGS)" -o $(LOCALBIN)/ ./cmd/...

IMG ?= marketplace-operator:$(VERSION)
# The image's org.opencontainers.image.source label.
IMAGE_SOURCE ?= https://$(shell sed -n 's/^module //p' go.mod)

.PHONY: docker-build
docker-build: ## Build the manager image IMG (needs a Docker engine).
	@docker info >/dev/null 2>&1 || { echo "make docker-build: no Docker engine reachable here; build the image where one runs (the Dockerfile needs nothing else)"; exit 1; }
	docker build --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) --build-arg SOURCE=$(IMAGE_SOURCE) -t $(IMG) .

# `make image` needs no container engine. The CA bundle is Debian's ca-certificates package, the
# one the Dockerfile's distroless base ships. Files and the image carry the commit's time.
IMAGE_PLATFORMS ?= linux/amd64 linux/arm64
IMAGE_DIR ?= $(LOCALBIN)/image
IMAGE_CA_CERTIFICATES ?= /etc/ssl/certs/ca-certificates.crt
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct)
IMAGE_TOOL = $(LOCALBIN)/image-builder

.PHONY: image
image: ## Build the manager's multi-platform OCI image into IMAGE_DIR (a layout and a tar of it), then check it.
	@test -s $(IMAGE_CA_CERTIFICATES) || { echo "make image: no $(IMAGE_CA_CERTIFICATES) (apt-get install ca-certificates)"; exit 1; }
	cd hack/image && go test -count=1 ./... && go build -o $(IMAGE_TOOL) .
	for p in $(IMAGE_PLATFORMS); do \
		CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} go build -trimpath -ldflags "-s -w $(LDFLAGS)" \
			-o $(IMAGE_DIR)/$${p/\//-}/manager ./cmd/manager; \
	done
	$(IMAGE_TOOL) build --version $(VERSION) --revision $(REVISION) --source $(IMAGE_SOURCE) \
		--epoch $(SOURCE_DATE_EPOCH) --ca-certificates $(IMAGE_CA_CERTIFICATES) \
		--out $(IMAGE_DIR)/oci --archive $(IMAGE_DIR)/marketplace-operator-$(VERSION).oci.tar \
		$(foreach p,$(IMAGE_PLATFORMS),--binary $(p)=$(IMAGE_DIR)/$(subst /,-,$(p))/manager)
	$(IMAGE_TOOL) check --version $(VERSION) --revision $(REVISION) --source $(IMAGE_SOURCE) \
		--layout $(IMAGE_DIR)/oci --dockerfile Dockerfile $(foreach p,$(IMAGE_PLATFORMS),--platform $(p))

##@ Tools

$(CONTROLLER_GEN):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/controller-gen $@

$(GOLANGCI_LINT):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(LOCALBIN)/golangci-lint $@
