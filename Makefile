# kchaos — see README.md. Two commands matter on a fresh machine: `make run` and `make test`.
GO        ?= go
BIN       := bin/kchaos
WORKLOAD  ?= workloads/demo.yaml
OUT       ?= out/demo
# TESTFLAGS lets CI add -race or -v; the default keeps `make test` under 10 minutes on 2 cores.
TESTFLAGS ?= -race -timeout 9m

.PHONY: all build run claims test bench lint fuzz soak clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/kchaos

run: build
	./$(BIN) run $(WORKLOAD) --out $(OUT)

# claims runs every shipped claim-NN workload (CLAIMS=08 or CLAIMS="2 11" for some) and
# writes one index page of the claims they answer under CLAIMS_OUT.
CLAIMS     ?=
CLAIMS_OUT ?= out/claims
claims: build
	./$(BIN) claims $(CLAIMS) --out $(CLAIMS_OUT)

test:
	$(GO) vet ./...
	$(GO) test $(TESTFLAGS) ./...

# bench runs the performance targets named in the issues and prints ratios against peers
# (franz-go's kfake) measured in the same run. Slow: minutes, not seconds.
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -count 1 -timeout 60m ./...

# fuzz runs every fuzz target for FUZZTIME each (default 30s).
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# soak runs the long tests behind the `soak` build tag.
soak:
	$(GO) test -tags soak -timeout 120m ./...

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...

clean:
	rm -rf bin out
