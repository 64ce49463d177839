# The portal's build, test and sandbox entry points. Run `make help`.
#
# Tools install under .tools/ (git-ignored) so a fresh machine needs only Go,
# python3 and apt: `make tools` installs everything, and a second run is instant
# because every tool is a file target.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

ROOT      := $(CURDIR)
TOOLS     := $(ROOT)/.tools
TOOLS_BIN := $(TOOLS)/bin
VENV      := $(TOOLS)/venv

PYTHON            ?= python3
MOTO_VERSION      := 5.2.5
STRIPE_MOCK_VER   := v0.183.0
MAILPIT_VERSION   := v1.33.1
# The contract fuzzer run by internal/contract's test, in its own venv.
SCHEMATHESIS_VERSION := 4.32.5
# templ CLI pinned to the runtime version in go.mod so generated code matches.
TEMPL_VERSION     := $(shell go list -m -f '{{.Version}}' github.com/a-h/templ 2>/dev/null)

# Each tool is a file target; the stamps carry the pinned version, so a
# version bump reinstalls and anything else is a no-op.
TEMPL        := $(TOOLS_BIN)/templ
TEMPL_STAMP  := $(TOOLS)/.templ-$(TEMPL_VERSION).stamp
STRIPE_STAMP := $(TOOLS)/.stripe-mock-$(STRIPE_MOCK_VER).stamp
MAILPIT_STAMP := $(TOOLS)/.mailpit-$(MAILPIT_VERSION).stamp
MOTO_STAMP   := $(VENV)/.moto-$(MOTO_VERSION).stamp
ST_VENV      := $(TOOLS)/schemathesis
ST_STAMP     := $(ST_VENV)/.schemathesis-$(SCHEMATHESIS_VERSION).stamp
CHROMIUM     := /usr/bin/chromium
PG_BINDIR    := /usr/lib/postgresql/15/bin
POSTGRES     := $(PG_BINDIR)/postgres

# The packages whose tests run against both databases: once on SQLite with
# everything else, then again on PostgreSQL (PORTAL_TEST_STORE=postgres;
# the tests start PostgreSQL 15 themselves, see internal/peers).
STORE_PKGS := ./internal/store/... ./internal/jobs/... ./internal/engine/... ./internal/workflows/... \
	./internal/audit/... ./internal/activity/... ./internal/billing/... ./internal/staff/...

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# CI is passed through to go test and the sandbox (tests may read it), also
# when given on the command line (make test CI=true).
ifneq ($(origin CI),undefined)
export CI
endif

.PHONY: help tools sandbox-tools generate lint check test run build bench soak fuzz clean

help: ## List the targets.
	@awk 'BEGIN {FS = ":.*?## "} /^[a-zA-Z_-]+:.*?## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

tools: $(TEMPL_STAMP) $(STRIPE_STAMP) $(MAILPIT_STAMP) $(MOTO_STAMP) $(ST_STAMP) $(CHROMIUM) $(POSTGRES) ## Install everything the tests need: templ, stripe-mock, mailpit, moto (venv), schemathesis (venv), chromium and PostgreSQL 15.

sandbox-tools: $(STRIPE_STAMP) $(MAILPIT_STAMP) $(MOTO_STAMP) ## Install only what the sandbox needs: stripe-mock, mailpit and moto (venv).

$(TEMPL_STAMP):
	@test -n "$(TEMPL_VERSION)" || { echo "cannot read the version of github.com/a-h/templ from go.mod" >&2; exit 1; }
	GOBIN=$(TOOLS_BIN) go install github.com/a-h/templ/cmd/templ@$(TEMPL_VERSION)
	@rm -f $(TOOLS)/.templ-*.stamp
	@touch $@

$(STRIPE_STAMP):
	GOBIN=$(TOOLS_BIN) go install github.com/stripe/stripe-mock@$(STRIPE_MOCK_VER)
	@rm -f $(TOOLS)/.stripe-mock-*.stamp
	@touch $@

$(MAILPIT_STAMP):
	GOBIN=$(TOOLS_BIN) go install github.com/axllent/mailpit@$(MAILPIT_VERSION)
	@rm -f $(TOOLS)/.mailpit-*.stamp
	@touch $@

$(MOTO_STAMP):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet 'moto[server]==$(MOTO_VERSION)'
	@rm -f $(VENV)/.moto-*.stamp
	@touch $@

$(ST_STAMP):
	$(PYTHON) -m venv $(ST_VENV)
	$(ST_VENV)/bin/pip install --quiet --upgrade pip
	$(ST_VENV)/bin/pip install --quiet 'schemathesis==$(SCHEMATHESIS_VERSION)'
	@rm -f $(ST_VENV)/.schemathesis-*.stamp
	@touch $@

$(CHROMIUM):
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium

# Debian's package would also create and start a cluster of its own; the
# tests start theirs, so none is created.
$(POSTGRES):
	$(SUDO) mkdir -p /etc/postgresql-common
	echo 'create_main_cluster = false' | $(SUDO) tee /etc/postgresql-common/createcluster.conf >/dev/null
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15

generate: $(TEMPL_STAMP) ## Generate Go code from .templ files.
	$(TEMPL) generate

lint: $(TEMPL_STAMP) ## Check templ generate leaves no diff, gofmt -l is empty, go vet passes.
	$(TEMPL) generate
	@git diff --exit-code -- '*_templ.go' || { echo "templ generate changed committed files: run 'make generate' and commit them" >&2; exit 1; }
	@untracked="$$(git ls-files --others --exclude-standard -- '*_templ.go')"; \
	if [ -n "$$untracked" ]; then echo "templ generate produced untracked files: commit them" >&2; echo "$$untracked" >&2; exit 1; fi
	@unformatted="$$(find . \( -path ./.git -o -path ./.tools -o -path ./.sandbox \) -prune -o -name '*.go' -type f -print0 | xargs -0 -r gofmt -l)"; \
	if [ -n "$$unformatted" ]; then echo "gofmt -l lists files to format (run gofmt -w):" >&2; echo "$$unformatted" >&2; exit 1; fi
	go vet ./...

check: lint ## Alias for lint.

test: tools lint ## Install tools, lint, then run all tests with -race (the store-backed ones on SQLite and, at the same time, on PostgreSQL).
	$(MAKE) --no-print-directory -j2 test-sqlite test-postgres

# The two halves of test, run side by side: the PostgreSQL run keeps the
# cores busy while the SQLite run waits on its slowest packages.
#
# go test starts packages in the order it is given them (each once), so
# the slowest are named first and the short ones fill in beside them
# instead of the slowest starting last. Their tests mostly wait (on
# chromium, moto, the contract fuzzer, polls), so the SQLite half runs
# three packages at once (-p; the default is one per core).
SLOW_PKGS       := ./internal/app ./internal/contract ./internal/web ./internal/drivers ./internal/engine \
	./internal/activity ./internal/billing ./internal/workflows
SLOW_STORE_PKGS := ./internal/engine ./internal/activity ./internal/workflows ./internal/billing ./internal/audit

.PHONY: test-sqlite test-postgres
test-sqlite:
	go test -race -count=1 -timeout 20m -p 3 $(SLOW_PKGS) ./...

test-postgres:
	PORTAL_TEST_STORE=postgres go test -race -count=1 -timeout 20m $(SLOW_STORE_PKGS) $(STORE_PKGS)

run: sandbox-tools ## Run the local sandbox (moto, stripe-mock, portal; data under .sandbox/).
	go run ./cmd/portal-dev sandbox

build: ## Build bin/portal (production: links no test peer or load tool) and bin/portal-dev (sandbox, bench, soak).
	go build -o bin/portal ./cmd/portal
	go build -o bin/portal-dev ./cmd/portal-dev

BENCHFLAGS ?=

bench: tools build ## Go benchmarks + HTTP load on a sandbox portal (SQLite) and on two replicas (PostgreSQL); report (Markdown, JSON) vs the previous one in reports/. BENCHFLAGS="-clients 50 -load-duration 1m" to vary.
	bin/portal-dev bench $(BENCHFLAGS)

SOAKFLAGS ?=
REPLICAS ?= 1

soak: tools build ## 10 min of mixed load from 100 clients on a sandbox: SIGKILL, moto restart, AWS faults, bad input; end-of-run checks. REPLICAS=2: two replicas on PostgreSQL behind a loopback balancer, the one applying SIGKILLed. SOAKFLAGS="-duration 2m" to shorten.
	bin/portal-dev soak -replicas $(REPLICAS) $(SOAKFLAGS)

FUZZTIME ?= 30s

fuzz: ## Run every Go fuzz target for FUZZTIME each (default 30s); new failing inputs land in testdata/fuzz.
	@failed=(); n=0; \
	while read -r file name; do \
		pkg="./$$(dirname "$$file")"; n=$$((n+1)); \
		echo "== $$pkg $$name ($(FUZZTIME))"; \
		go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) "$$pkg" || failed+=("$$pkg $$name"); \
	done < <(grep -rE --include='*_test.go' -o '^func Fuzz[A-Za-z0-9_]*' cmd internal | sed -E 's/:func / /' | sort); \
	echo "fuzz: $$n targets, $${#failed[@]} failed"; \
	for f in "$${failed[@]}"; do echo "  FAILED $$f"; done; \
	[ $${#failed[@]} -eq 0 ]

clean: ## Remove build outputs, the sandbox data and the installed tools.
	rm -rf bin .sandbox .tools
	find . -path ./.git -prune -o \( -name '*.test' -o -name '*.out' \) -type f -print0 | xargs -0 -r rm -f
