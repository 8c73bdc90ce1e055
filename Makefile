# Modelpub: `make run` opens the app, `make test` runs every test.
# Both install the Debian/Ubuntu packages they need when they are missing.

GO       ?= go
BIN      := bin/modelpub
export LANG := en_US.UTF-8

# cgo build of Fyne (GLFW, OpenGL, X11).
BUILD_PKGS := gcc pkg-config libgl1-mesa-dev libx11-dev libxcursor-dev libxrandr-dev \
              libxinerama-dev libxi-dev libxxf86vm-dev
# Benchmarks measure peak memory with GNU time.
BENCH_PKGS := time

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT  := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get -o DPkg::Lock::Timeout=600

# deps-% installs the listed packages that dpkg does not report installed.
define install_missing
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		if ! command -v apt-get >/dev/null; then echo "please install: $$missing"; exit 1; fi; \
		echo "installing: $$missing"; \
		$(APT) update -qq && $(APT) install -y -qq --no-install-recommends $$missing; \
	fi
endef

.PHONY: run build test bench fuzz deps deps-node deps-bench fmt clean

run: build
	./$(BIN)

build: deps
	$(GO) build -o $(BIN) .

deps:
	$(call install_missing,$(BUILD_PKGS))

# The Hub conformance test runs the official npm client against the emulator.
deps-node:
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
		echo "installing: nodejs npm"; $(APT) update -qq && $(APT) install -y -qq --no-install-recommends nodejs npm; \
	fi

deps-bench: deps
	$(call install_missing,$(BENCH_PKGS))

test: deps deps-node
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test ./...
	$(GO) test -race ./core/...

# Benchmarks with ratios against references measured in the same run.
# BENCH_DIR holds the generated multi-GB test files (default: a temp folder);
# BENCH_ONLY=kernel,listing,files,pipelines runs some groups only.
bench: deps-bench build
	$(GO) run ./bench -bin ./$(BIN) $(if $(BENCH_DIR),-dir $(BENCH_DIR)) $(if $(BENCH_ONLY),-only $(BENCH_ONLY))

# Fuzz every parser of untrusted bytes for FUZZTIME each.
FUZZTIME ?= 60s
fuzz:
	for t in FuzzReadHeader FuzzParseIndex FuzzParseSize FuzzPythonJSON; do \
		$(GO) test ./core/tensors/ -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -timeout 0 || exit 1; done
	$(GO) test ./core/torchbin/ -run '^$$' -fuzz '^FuzzPlan$$' -fuzztime $(FUZZTIME) -timeout 0

clean:
	rm -rf bin
