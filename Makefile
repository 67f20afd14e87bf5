# Mockernetes: a Kubernetes 1.37 API server for tests.
GO ?= go
BIN ?= bin

# The Kubernetes release pinned in go.mod, stamped into kubectl (the server
# reads it from its own build information and needs no stamping).
K8S_VERSION := $(shell $(GO) list -m -f '{{.Version}}' k8s.io/kubernetes)
K8S_MINOR := $(word 2,$(subst ., ,$(K8S_VERSION)))
VERSION_LDFLAGS := \
	-X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=$(K8S_MINOR) \
	-X k8s.io/client-go/pkg/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/client-go/pkg/version.gitMajor=1 \
	-X k8s.io/client-go/pkg/version.gitMinor=$(K8S_MINOR)

PYTHON ?= python3
VENV ?= .venv

.PHONY: build test python-test soak fuzz bench bench-scale bench-reference bench-python run vet fmt kubectl helm clean

# Compile every package and the two binaries under $(BIN)/.
build:
	$(GO) build ./...
	$(GO) build -ldflags '$(VERSION_LDFLAGS)' -o $(BIN)/mockernetes ./cmd/mockernetes

# kubectl at the pinned Kubernetes version (upstream k8s.io/kubectl).
kubectl:
	$(GO) build -ldflags '$(VERSION_LDFLAGS)' -o $(BIN)/kubectl ./hack/kubectl

# helm, for the e2e test of `helm install --wait` and `helm test`: helm's
# own module at a pinned version, built from the Go module proxy.
HELM_VERSION ?= v4.3.2
helm:
	GOBIN=$(abspath $(BIN)) $(GO) install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Everything: under the race detector the store, the list cache and the in-process servers
# (their tests run the whole server: storage, controllers, scheduler and
# kubelet), then the rest, including test/e2e, which builds the server and
# kubectl and runs them as processes (the build step first, so that the e2e
# set-up only links), and helm.
RACE_PKGS := ./pkg/storage/... ./pkg/listcache/... ./pkg/server/... ./pkg/envtest/...
test: vet helm
	$(GO) build ./...
	$(GO) test -race -count=1 -timeout 20m $(RACE_PKGS)
	MOCKERNETES_HELM=$(abspath $(BIN))/helm $(GO) test -count=1 -timeout 30m $$($(GO) list ./... | grep -vxF "$$($(GO) list $(RACE_PKGS))")
	$(MAKE) python-test

# The Python package in a virtualenv ($(VENV)), installed as users install
# it: `pip install ./python` builds the wheel, whose build hook compiles the
# server into it. Its tests then run on the wheel's binary, two pytest-xdist
# workers with a server each.
python-test:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check './python[test]'
	cd python && ../$(VENV)/bin/python -m pytest -q -n 2 -p no:cacheprovider tests

# The longer tests: fifty clients mixing every verb for SOAK (under the
# race detector), SOAK_CYCLES create/delete cycles against the binary, and
# a CronJob that forbids concurrent runs (cron counts in minutes). CI runs
# them shorter.
SOAK ?= 60s
SOAK_CYCLES ?= 100000
soak:
	MOCKERNETES_SOAK=$(SOAK) $(GO) test -race -count=1 -timeout 30m -run '^TestMixedVerbs$$' ./pkg/server
	MOCKERNETES_SOAK_CYCLES=$(SOAK_CYCLES) MOCKERNETES_SOAK_CRONJOB=1 $(GO) test -count=1 -timeout 30m -run '^(TestChurn|TestCronJobForbid)$$' -v ./test/e2e

# Fuzz what clients send (bodies of every content type, patches,
# selectors and continue tokens, the admin API) and the scripts the
# simulated shell plays for FUZZTIME per target. An input that fails is
# saved under the package's testdata/fuzz, which `make test` replays from
# then on.
FUZZTIME ?= 30s
FUZZ_TARGETS := FuzzCreate FuzzPatch FuzzList FuzzAdmin
fuzz:
	for t in $(FUZZ_TARGETS); do $(GO) test ./pkg/server -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) || exit 1; done
	$(GO) test ./pkg/kubelet -run '^$$' -fuzz '^FuzzShell$$' -fuzztime $(FUZZTIME)

# The benchmarks recorded in docs/benchmarks.md.
bench:
	$(GO) test ./pkg/storage -run '^$$' -bench . -benchmem
	$(GO) test ./test/e2e -run '^$$' -bench StartToReady -benchtime 10x
	$(GO) test ./test/e2e -run '^$$' -bench 'PodsReady|DeploymentReady|DeploymentPods|CascadingDelete' -benchtime 10x
	$(GO) test ./test/e2e -run '^$$' -bench ListPods
	$(GO) test ./test/e2e -run '^$$' -bench Scheduling100Nodes -benchtime 3x
	$(GO) test ./pkg/server -run '^$$' -bench 'Reset|SettleQuiet|DeploymentOf3' -benchtime 20x
	$(GO) test ./pkg/envtest -run '^$$' -bench . -benchtime 10x

# The fleet-size scenario: Deployments of 100 replicas on 100 nodes, 1,000
# pods and then 10,000, each on a fresh server, with a progress line.
bench-scale: build
	$(GO) run ./hack/benchscale -bin $(BIN)/mockernetes $(BENCH_SCALE_FLAGS)

# Side by side with kube-apiserver and etcd as envtest runs them (built here
# from the same Kubernetes version): start-up, memory, CRUD, LIST, watch.
bench-reference: build
	cd hack/bench && $(GO) run . -repo $(CURDIR) -mockernetes $(abspath $(BIN))/mockernetes $(BENCH_REFERENCE_FLAGS)

# The Python package's benchmark (one activation on a warm server); needs
# the virtualenv `make python-test` sets up.
bench-python:
	$(VENV)/bin/python python/bench/activation.py

# Serve in the foreground on https://127.0.0.1:6443 until Ctrl-C.
run:
	$(GO) run ./cmd/mockernetes serve

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN) $(VENV)
