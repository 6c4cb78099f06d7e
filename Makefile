# hbmesh developer targets. `make test` needs nothing but Go and the module
# proxy: every test starts the NATS servers it uses, in-process, on random
# loopback ports, and `tools` installs the standalone nats-server and the
# nats CLI that the end-to-end tests use as real clients. The browser test
# also wants Debian's chromium, the alerting tests its prometheus (for
# promtool) and prometheus-alertmanager (`apt-get install chromium
# prometheus prometheus-alertmanager`); without them, those tests skip
# with that hint (and fail under CI=true).

GO      ?= go
# `hbmesh version` prints these; without them it falls back to what the Go
# toolchain recorded in the binary.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
BIN     := bin/hbmesh
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)

TOOLS   := $(CURDIR)/bin/tools
# Fuzz budgets are counts of executions, not durations: with a duration,
# go1.26's fuzz coordinator can report "context deadline exceeded" as a
# failure when the time is up (golang/go#75804, fixed in go1.27).
FUZZTIME ?= 500000x

.PHONY: build demo test tools lint vet fmt-check clean fuzz fuzz-long faults faults-long bench bench-node

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/hbmesh

# Everything in one process; Ctrl-C to stop.
demo: build
	./$(BIN) demo --chaos

test: lint tools
	HBMESH_TOOLS=$(TOOLS) $(GO) test -race -count=1 -timeout 15m ./...

# The real nats-server and nats CLI, pinned, from the Go module proxy, and
# allow-responses, the one step of SECURITY.md's fleet setup natscli lacks.
ALLOWRESP := deploy/auth/allow-responses
tools: $(TOOLS)/nats-server $(TOOLS)/nats $(TOOLS)/allow-responses
$(TOOLS)/nats-server:
	GOBIN=$(TOOLS) $(GO) install github.com/nats-io/nats-server/v2@v2.15.2
$(TOOLS)/nats:
	GOBIN=$(TOOLS) $(GO) install github.com/nats-io/natscli/nats@v0.5.0
$(TOOLS)/allow-responses: $(ALLOWRESP)/main.go $(ALLOWRESP)/go.mod $(ALLOWRESP)/go.sum
	$(GO) build -C $(ALLOWRESP) -o $(TOOLS)/allow-responses .

# Every fuzz target for FUZZTIME each (500 000 executions, about 10 s
# each here; CI runs this); fuzz-long is the documented long run, about
# 5 minutes per target (docs/RELIABILITY.md).
fuzz:
	for t in FuzzDecodeBeat FuzzDecodeProbeReply FuzzFastPathAgrees FuzzDecodeNextAgrees FuzzDecodeNextAnySender FuzzTSCacheAgrees FuzzParseSubject FuzzBeatIDAgreesWithParseBeat FuzzParseLabels FuzzParseNodeConn FuzzDecodeDisconnectAdvisory FuzzDecodeUserInfo; do \
		$(GO) test ./wire -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) || exit 1; \
	done
	$(GO) test ./monitor -run '^$$' -fuzz '^FuzzDecodeEvent$$' -fuzztime $(FUZZTIME)

fuzz-long:
	$(MAKE) fuzz FUZZTIME=15000000x

# The fault-injection suite drives real processes (see docs/RELIABILITY.md).
TRIALS ?= 2
faults:
	$(GO) test -tags faults -count=1 -timeout 3h -v -run TestFaultSuite ./internal/faults -trials $(TRIALS)
faults-long:
	$(MAKE) faults TRIALS=20

# Quick versions of every benchmark (docs/PERFORMANCE.md has the long ones).
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 200ms ./wire ./monitor
	for b in ingest detect scale probe node; do ./$(BIN) bench $$b --quick || exit 1; done

# What `hbmesh node` costs its host (docs/PERFORMANCE.md, "node"): a real
# node beating once a second to a real server for a minute, measured from
# /proc beside the same binary idle, a Go hello world and a bare nats.go
# client in the same window.
MEASURE ?= 1m
bench-node: build
	cd bench && $(GO) build -o ../bin/bench/ ./cmd/gohello ./cmd/barenode
	./$(BIN) bench node --measure $(MEASURE) --hello bin/bench/gohello --bare bin/bench/barenode

lint: vet fmt-check

vet:
	$(GO) vet ./...
	$(GO) vet -C $(ALLOWRESP) ./...

fmt-check:
	@out=$$(find . -name '*.go' -not -path './vendor/*' -not -path '*/testdata/*' -not -path './.git/*' | xargs gofmt -l); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

clean:
	rm -rf bin dist

# Release packaging (docs/DEPLOY.md). goreleaser is pinned in tools/go.mod,
# a module of its own, so its dependencies stay out of hbmesh's; the first
# build of it takes several minutes. `dist` makes a snapshot release in
# dist/: archives, checksums, .deb and .rpm. `dist-check` unpacks the .deb
# and checks what it installs (internal/pkgtest); CI runs both.
GORELEASER := $(TOOLS)/goreleaser
# goreleaser reads the commit only from a repository with a remote; one
# without gets a stand-in origin URL, which a snapshot never uses.
DIST_ENV := $(if $(shell git remote 2>/dev/null),,GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=remote.origin.url GIT_CONFIG_VALUE_0=https://github.com/hbmesh/hbmesh.git)

.PHONY: dist dist-check
$(GORELEASER): tools/go.mod tools/go.sum
	cd tools && GOBIN=$(TOOLS) $(GO) install github.com/goreleaser/goreleaser/v2

dist: $(GORELEASER)
	$(GORELEASER) check
	$(DIST_ENV) $(GORELEASER) release --snapshot --clean

dist-check: dist
	$(GO) test -tags dist -count=1 -v ./internal/pkgtest

# Docker demo cluster: 3 servers, 5 nodes, 2 monitors (docs/DEMO.md).
# The image is FROM scratch around bin/hbmesh: nothing is
# pulled. e2e-docker prints one SKIP line and succeeds when no Docker
# engine is reachable.
IMAGE          ?= hbmesh:dev
DEMO_PROJECT   ?= hbmesh-demo
# The e2e test's own project, so that it never touches a demo from
# cluster-up: hbmesh-e2e, or DEMO_PROJECT when that names another.
E2E_PROJECT    ?= $(if $(filter hbmesh-demo,$(DEMO_PROJECT)),hbmesh-e2e,$(DEMO_PROJECT))
DOCKER_COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
COMPOSE        := HBMESH_IMAGE=$(IMAGE) $(DOCKER_COMPOSE) -p $(DEMO_PROJECT)

.PHONY: image cluster-up cluster-down e2e-docker

image: build
	docker build -t $(IMAGE) .

cluster-up: image
	$(COMPOSE) up -d
	@for i in $$(seq 90); do \
		s=$$(docker inspect -f '{{.State.Health.Status}}' $$($(COMPOSE) ps -q monitor-1 monitor-2) | sort -u); \
		if [ "$$s" = healthy ]; then echo "ready: http://127.0.0.1:$${HBMESH_MONITOR1_PORT:-8081}/ http://127.0.0.1:$${HBMESH_MONITOR2_PORT:-8082}/ nats://127.0.0.1:$${HBMESH_NATS_PORT:-4222}"; exit 0; fi; \
		sleep 1; \
	done; $(COMPOSE) ps; echo "cluster-up: monitors not healthy after 90s"; exit 1

cluster-down:
	$(COMPOSE) --profile scale down -v --remove-orphans

e2e-docker:
	@if ! docker info >/dev/null 2>&1; then echo "SKIP: e2e-docker: no Docker engine reachable"; exit 0; fi; \
	$(MAKE) image && HBMESH_IMAGE=$(IMAGE) HBMESH_E2E_PROJECT=$(E2E_PROJECT) $(GO) test -tags docker -count=1 -v -timeout 20m ./internal/dockertest
