# Modelpub: `make run` opens the app, `make test` runs every test.
# Both install the Debian/Ubuntu packages they need when they are missing.

GO       ?= go
BIN      := bin/modelpub
export LANG := en_US.UTF-8

# cgo build of Fyne (GLFW, OpenGL, X11).
BUILD_PKGS := gcc pkg-config libgl1-mesa-dev libx11-dev libxcursor-dev libxrandr-dev \
              libxinerama-dev libxi-dev libxxf86vm-dev \
              libgtk-3-dev
# (libgtk-3-dev: the native folder picker, github.com/sqweek/dialog, is GTK 3.)
# make screenshots runs the real app under Xvfb and photographs it.
SHOT_PKGS := xvfb xauth imagemagick xdotool
# Benchmarks measure peak memory with GNU time.
BENCH_PKGS := time
# The keyring integration test talks to a real Secret Service (gnome-keyring)
# and checks it with secret-tool, in a private D-Bus session.
KEYRING_PKGS := gnome-keyring libsecret-tools dbus
# The one-pass test of core/publish reads a syscall trace of a publish.
TRACE_PKGS := strace

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

.PHONY: run build test test-keyring bench fuzz deps deps-node deps-bench deps-keyring fmt clean screenshots package deps-shots

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

deps-keyring:
	$(call install_missing,$(KEYRING_PKGS) $(TRACE_PKGS))

test: deps deps-node deps-keyring
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test ./...
	$(GO) test -race ./core/...
	@$(MAKE) --no-print-directory test-keyring

# The real-keyring test (core/auth): a private D-Bus session whose
# gnome-keyring is unlocked with a throwaway password and keeps its keyring
# in a temporary XDG_DATA_HOME. HOME stays as it is (it holds the Go caches);
# the daemons end with the session.
test-keyring: deps-keyring
	@K=$$(mktemp -d) && trap 'rm -rf "$$K"' EXIT && mkdir -m 700 "$$K/data" "$$K/run" && \
	XDG_DATA_HOME="$$K/data" XDG_RUNTIME_DIR="$$K/run" dbus-run-session -- sh -c \
		'printf test | gnome-keyring-daemon --unlock --components=secrets >/dev/null && \
		MODELPUB_KEYRING_IT=1 $(GO) test -count=1 -v -run TestKeyringIntegration ./core/auth/'

# Benchmarks with ratios against references measured in the same run.
# BENCH_DIR holds the generated multi-GB test files (default: a temp folder);
# BENCH_ONLY=kernel,listing,files,pipelines runs some groups only.
bench: deps-bench build
	$(GO) run ./bench -bin ./$(BIN) $(if $(BENCH_DIR),-dir $(BENCH_DIR)) $(if $(BENCH_ONLY),-only $(BENCH_ONLY))

# Fuzz every parser of untrusted bytes for FUZZTIME each.
FUZZTIME ?= 60s
fuzz:
	for t in FuzzReadHeader FuzzParseIndex FuzzParseSize FuzzPythonJSON FuzzHeaderParsersAgree FuzzIndexParsersAgree; do \
		$(GO) test ./core/tensors/ -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -timeout 0 || exit 1; done
	for t in FuzzPlan FuzzScanLimits; do $(GO) test ./core/torchbin/ -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -timeout 0 || exit 1; done
	$(GO) test ./core/card/ -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) -timeout 0

clean:
	rm -rf bin

deps-shots: deps
	$(call install_missing,$(SHOT_PKGS))

# One PNG per tab and one of the welcome view, of the real app on a synthetic
# pipeline, in docs/screenshots/ (cmd/screenshots says how).
screenshots: build deps-shots
	xvfb-run -a -s "-screen 0 1280x800x24" $(GO) run ./cmd/screenshots -app ./$(BIN) -out docs/screenshots

# The Linux bundle, Modelpub.tar.xz, from FyneApp.toml. The fyne tool goes to
# ./.bin; the first run rebuilds all cgo with hardening flags (about 4 min).
FYNE_VERSION := v1.7.4
FYNE_TOOL    := .bin/fyne
$(FYNE_TOOL):
	GOBIN=$(CURDIR)/.bin $(GO) install fyne.io/tools/cmd/fyne@$(FYNE_VERSION)

package: deps $(FYNE_TOOL)
	$(FYNE_TOOL) package -os linux
