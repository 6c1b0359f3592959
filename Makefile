# Varta for Go. Run "make help" for the targets.
SHELL      := /bin/bash
GO         ?= go
BIN        := bin
VERSION    ?= 0.2.0-dev
LDFLAGS    := -X github.com/varta-go/varta/pkg/buildinfo.Version=$(VERSION)
CMDS       := varta-watch varta-beat varta-audit
MODULES    := ./pkg ./cmd/varta-watch ./cmd/varta-beat ./cmd/varta-audit
PKGS       := ./pkg/... ./cmd/varta-watch/... ./cmd/varta-beat/... ./cmd/varta-audit/...
# -parallel 4: the end-to-end tests that run in parallel mostly wait on
# their daemons, so four at a time finish sooner than GOMAXPROCS (2 here).
TESTFLAGS  ?= -race -count=1 -timeout 30m -parallel 4
FUZZTIME   ?= 10s
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
RUN_DIR    ?= $(CURDIR)/run
DIST       ?= dist
ARCH       ?= $(shell $(GO) env GOARCH)
DEB        := $(DIST)/varta_$(VERSION)_$(ARCH).deb
NFPM       ?= $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
SOAK       ?= 10m

.PHONY: all build test test-unit lint bench fuzz cross man run e2e faults soak clean help tidy

all: build

help:
	@echo "build  build the three binaries into $(BIN)/"
	@echo "run    build and start varta-watch on $(RUN_DIR)/varta.sock, events on stdout"
	@echo "test   run every module's tests with -race: unit, end-to-end, fault cases and a 60 s soak (what CI runs)"
	@echo "test-unit  only the fast tests (-short -race): no end-to-end tests, no fault cases"
	@echo "lint   gofmt check, go vet and staticcheck on every module"
	@echo "e2e    only the end-to-end tests (real binaries, real sockets)"
	@echo "faults the fault-injection suite, figures printed (docs/reliability.md)"
	@echo "soak   10,000 UDP + 200 Unix agents with induced stalls for SOAK (default $(SOAK)), checked"
	@echo "bench  run the benchmarks (see docs/benchmarks.md)"
	@echo "fuzz   run every fuzz target for FUZZTIME (default $(FUZZTIME))"
	@echo "cross  build the binaries for darwin and freebsd too"
	@echo "man    regenerate man/ from the CLI definitions"
	@echo "deb    build $(DEB) (nfpm): binaries, man pages, systemd units, defaults, rules, dashboard"

build:
	@mkdir -p $(BIN)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/varta-watch ./cmd/varta-beat ./cmd/varta-audit

# make test runs the fault-injection cases in their shortened form (-short)
# and the soak for 60 s.
test:
	$(GO) test $(TESTFLAGS) $$($(GO) list $(PKGS) | grep -v '/internal/faults$$')
	VARTA_SOAK=60s $(GO) test $(TESTFLAGS) -short ./cmd/varta-watch/internal/faults/

# make test-unit is the quick loop while editing: -short skips the
# end-to-end tests (they build and run the real binaries), and the
# fault-injection suite is left out.
test-unit:
	$(GO) test $(TESTFLAGS) -short $$($(GO) list $(PKGS) | grep -v '/internal/faults$$')

lint:
	@out=$$(gofmt -l pkg cmd); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(STATICCHECK) $(PKGS)

e2e:
	$(GO) test $(TESTFLAGS) ./cmd/varta-watch/internal/e2e/ ./cmd/varta-beat/ ./cmd/varta-audit/internal/app/

faults:
	$(GO) test -v -count=1 -timeout 30m ./cmd/varta-watch/internal/faults/

soak:
	VARTA_SOAK=$(SOAK) $(GO) test -v -count=1 -timeout 24h -run '^TestSoak$$' ./cmd/varta-watch/internal/faults/

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

fuzz:
	@set -e; for spec in $$(grep -rl --include='*_test.go' '^func Fuzz' pkg cmd | xargs -n1 dirname | sort -u); do \
		for f in $$(grep -h '^func Fuzz' $$spec/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
			echo "== $$spec $$f"; $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) ./$$spec; \
		done; done

cross:
	@set -e; for os in darwin freebsd; do for c in $(CMDS); do \
		echo "GOOS=$$os $$c"; GOOS=$$os GOARCH=amd64 $(GO) build -o /dev/null ./cmd/$$c; done; done

man:
	$(GO) run ./cmd/varta-watch/internal/genman > man/varta-watch.8
	$(GO) run ./cmd/varta-beat/internal/genman > man/varta-beat.1
	$(GO) run ./cmd/varta-audit/internal/genman > man/varta-audit.1

deb:
	CGO_ENABLED=0 $(MAKE) build
	$(MAKE) deb-package

# deb-package packages the binaries already in $(BIN) (the tests pass their
# own BIN and DIST to reuse the binaries they built).
deb-package:
	@mkdir -p $(DIST)/man
	@for p in man/*.[18]; do gzip -9n -c $$p > $(DIST)/man/$$(basename $$p).gz; done
	VARTA_BIN=$(abspath $(BIN)) VARTA_MAN=$(abspath $(DIST)/man) VARTA_VERSION=$(VERSION) VARTA_ARCH=$(ARCH) \
		$(NFPM) package --packager deb --config deploy/nfpm.yaml --target $(DEB)

run: build
	@mkdir -p $(RUN_DIR) && chmod 0700 $(RUN_DIR)
	@echo "varta-watch listening on $(RUN_DIR)/varta.sock (threshold 1500 ms); in another shell:"
	@echo "  $(BIN)/varta-beat run --socket $(RUN_DIR)/varta.sock"
	$(BIN)/varta-watch --socket $(RUN_DIR)/varta.sock --threshold-ms 1500 --export-file -

tidy:
	@for m in $(MODULES); do (cd $$m && $(GO) mod tidy); done

clean:
	rm -rf $(BIN) $(RUN_DIR) $(DIST)
