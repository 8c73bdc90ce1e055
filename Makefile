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
# On a Mac, Xcode's command line tools (xcode-select --install) give cgo
# all Fyne needs: nothing to install, and make package makes Modelpub.app.
ifeq ($(shell uname -s),Darwin)
BUILD_PKGS :=
PACKAGE_OS := darwin
else
PACKAGE_OS := linux
endif
# make screenshots runs the real app under Xvfb and photographs it.
SHOT_PKGS := xvfb xauth imagemagick xdotool
# Benchmarks measure peak memory with GNU time.
BENCH_PKGS := time openssl
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

.PHONY: run build test test-keyring bench fuzz deps deps-node deps-bench deps-keyring fmt clean screenshots package deps-shots \
	windows deps-windows test-windows deps-wine vet-darwin

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
	@$(MAKE) --no-print-directory vet-darwin
	@$(MAKE) --no-print-directory test-windows

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
bench: deps-bench deps-node build
	$(GO) run ./bench -bin ./$(BIN) $(if $(BENCH_DIR),-dir $(BENCH_DIR)) $(if $(BENCH_ONLY),-only $(BENCH_ONLY))

# Fuzz every parser of untrusted bytes for FUZZTIME each.
FUZZTIME ?= 60s
fuzz:
	for t in FuzzReadHeader FuzzParseIndex FuzzParseSize FuzzPythonJSON FuzzHeaderParsersAgree FuzzIndexParsersAgree; do \
		$(GO) test ./core/tensors/ -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -timeout 0 || exit 1; done
	for t in FuzzPlan FuzzScanLimits; do $(GO) test ./core/torchbin/ -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -timeout 0 || exit 1; done
	$(GO) test ./core/card/ -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) -timeout 0
	for t in FuzzParseShard FuzzReadXorb; do $(GO) test ./core/hub/xet/ -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -timeout 0 || exit 1; done

clean:
	rm -rf bin dist

deps-shots: deps
	$(call install_missing,$(SHOT_PKGS))

# One PNG per tab and one of the welcome view, of the real app on a synthetic
# pipeline, in docs/screenshots/ (cmd/screenshots says how).
screenshots: build deps-shots
	xvfb-run -a -s "-screen 0 1280x800x24" $(GO) run ./cmd/screenshots -app ./$(BIN) -out docs/screenshots

# The Linux bundle, Modelpub.tar.xz, from FyneApp.toml (on a Mac:
# Modelpub.app). The fyne tool goes to
# ./.bin; the first run rebuilds all cgo with hardening flags (about 4 min).
FYNE_VERSION := v1.7.4
FYNE_TOOL    := .bin/fyne
$(FYNE_TOOL):
	GOBIN=$(CURDIR)/.bin $(GO) install fyne.io/tools/cmd/fyne@$(FYNE_VERSION)

package: deps $(FYNE_TOOL)
	$(FYNE_TOOL) package -os $(PACKAGE_OS)

# The core and the CLI compile for macOS (Intel and Apple silicon); cgo is
# off for the check, so it needs no Apple SDK. The app itself is built on a
# Mac (README).
vet-darwin:
	CGO_ENABLED=0 GOOS=darwin GOARCH=amd64 $(GO) vet ./core/... ./cli/...
	CGO_ENABLED=0 GOOS=darwin GOARCH=arm64 $(GO) vet ./core/... ./cli/...

# Windows: Debian's mingw-w64 builds Fyne's C parts (GLFW) and the
# resources; Wine runs the tests.
MINGW_PKGS := gcc-mingw-w64-x86-64
WIN_PKGS   := $(MINGW_PKGS) zip
WINE_PKGS  := wine64 $(MINGW_PKGS)

deps-windows:
	$(call install_missing,$(WIN_PKGS))

deps-wine:
	$(call install_missing,$(WINE_PKGS))

# The test binaries of core/..., cli/..., internal/crossos and internal/ostest, built for
# Windows, run under Wine, two at a time; internal/crossos checks that a
# save there writes what a save here writes, and the acceptance test drives
# the bundle's modelpub.com (so make windows runs first) against
# modelpub localhub running here (bin/modelpub). build/wine/run-tests.sh
# says what the harness adds to Wine 8.0 and why. WINE_PKGS_ONLY="modelpub/core/tensors ..."
# runs some packages only, and no acceptance test.
test-windows: deps-wine $(if $(WINE_PKGS_ONLY),,windows build)
	GO=$(GO) $(if $(WINE_PKGS_ONLY),WINE_PKGS="$(WINE_PKGS_ONLY)",MODELPUB_WIN_CLI=$(CURDIR)/$(WIN_OUT)/Modelpub/modelpub.com \
		MODELPUB_LINUX_CLI=$(CURDIR)/$(BIN)) build/wine/run-tests.sh

# make windows: dist/Modelpub-VERSION-windows-amd64.zip with
#   modelpub.exe  the app, without a console window (-H windowsgui);
#   modelpub.com  the same program as a console program, for commands: cmd
#                 and PowerShell try .com before .exe, so `modelpub save
#                 ...` typed in the bundle's folder or with it on PATH runs
#                 this one and prints to the console;
# both with the icon, version information (FyneApp.toml's Version and
# Build) and a manifest (build/windows), compiled by windres into a .syso
# that go build links. The first build compiles GLFW with mingw (minutes).
APP_VERSION := $(shell sed -n 's/^Version *= *"\(.*\)"/\1/p' FyneApp.toml)
APP_BUILD   := $(shell sed -n 's/^Build *= *\([0-9]*\).*/\1/p' FyneApp.toml)
WIN_OUT     := bin/windows
WIN_ZIP     := dist/Modelpub-$(APP_VERSION)-windows-amd64.zip
WIN_ENV     := CGO_ENABLED=1 GOOS=windows GOARCH=amd64 CC=x86_64-w64-mingw32-gcc
WIN_LDFLAGS := -s -w -X modelpub/cli.Version=$(APP_VERSION)
# The .syso is linked only from the main package's folder; it is there
# during the build alone.
WIN_SYSO    := zz_modelpub_windows_amd64.syso
comma       := ,

windows: deps-windows
	rm -rf $(WIN_OUT) && mkdir -p $(WIN_OUT)/res $(WIN_OUT)/Modelpub dist
	$(GO) run ./build/windows/mkico assets/icon.png $(WIN_OUT)/res/modelpub.ico
	sed -e 's/@VERSION_DOTS@/$(APP_VERSION).$(APP_BUILD)/' build/windows/modelpub.manifest.in >$(WIN_OUT)/res/modelpub.manifest
	for kind in gui cli; do \
		if [ $$kind = gui ]; then file=modelpub.exe; desc=Modelpub; else file=modelpub.com; desc="Modelpub command line"; fi; \
		sed -e 's/@VERSION_COMMAS@/$(subst .,$(comma),$(APP_VERSION)),$(APP_BUILD)/' -e 's/@VERSION@/$(APP_VERSION)/' \
			-e "s/@FILENAME@/$$file/" -e "s/@DESCRIPTION@/$$desc/" build/windows/modelpub.rc.in >$(WIN_OUT)/res/$$kind.rc && \
		(cd $(WIN_OUT)/res && x86_64-w64-mingw32-windres -O coff -i $$kind.rc -o $$kind.syso) || exit 1; \
	done
	@trap 'rm -f $(WIN_SYSO)' EXIT; set -e; \
	cp $(WIN_OUT)/res/gui.syso $(WIN_SYSO); \
	echo "$(WIN_ENV) go build -ldflags '$(WIN_LDFLAGS) -H=windowsgui' -o $(WIN_OUT)/Modelpub/modelpub.exe ."; \
	$(WIN_ENV) $(GO) build -trimpath -ldflags "$(WIN_LDFLAGS) -H=windowsgui" -o $(WIN_OUT)/Modelpub/modelpub.exe .; \
	cp $(WIN_OUT)/res/cli.syso $(WIN_SYSO); \
	echo "$(WIN_ENV) go build -ldflags '$(WIN_LDFLAGS)' -o $(WIN_OUT)/Modelpub/modelpub.com ."; \
	$(WIN_ENV) $(GO) build -trimpath -ldflags "$(WIN_LDFLAGS)" -o $(WIN_OUT)/Modelpub/modelpub.com .
	rm -f $(WIN_ZIP) && cd $(WIN_OUT) && zip -q -r -X $(CURDIR)/$(WIN_ZIP) Modelpub
	@echo "wrote $(WIN_ZIP)"
