# hbmesh developer targets. `make test` needs nothing but Go: every test
# starts the NATS servers it uses, in-process, on random loopback ports.

GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
BIN     := bin/hbmesh
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: build demo test lint vet fmt-check clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/hbmesh

# Everything in one process; Ctrl-C to stop.
demo: build
	./$(BIN) demo --chaos

test: lint
	$(GO) test -race -count=1 -timeout 15m ./...

lint: vet fmt-check

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(find . -name '*.go' -not -path './vendor/*' -not -path '*/testdata/*' -not -path './.git/*' | xargs gofmt -l); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

clean:
	rm -rf bin
