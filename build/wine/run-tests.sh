#!/usr/bin/env bash
# Runs the tests of core/..., cli/... and internal/crossos built for Windows
# (go test -c, no cgo) under Wine, each in its package folder, among them
# the check that a save on Windows writes the bytes a save on Linux writes
# (internal/crossos); then, given MODELPUB_WIN_CLI (modelpub.com) and
# MODELPUB_LINUX_CLI (modelpub for Linux), the acceptance test of the
# Windows command line. make test-windows calls this after installing
# wine64 and mingw-w64 and building both; make test calls make
# test-windows.
#
# The Wine prefix lives in WINE_HOME (default: the user cache) and is made
# once (wineboot, about 40 s); then it holds two things that exist for
# these tests only and never go into the Windows bundle:
#   - bcryptprimitives.dll, a shim from processprng.c: Debian 12's Wine 8.0
#     has no ProcessPrng, which the Go runtime calls at start;
#   - the UNC share \\modelpub-unc\c (drive C:), for the path tests.
# The other Wine gap is worked around at build time, see overlay below.
#
# Environment: GO (go), WINE (wine64), WINE_HOME, WINE_PKGS (packages to
# test; default all with tests but core/hub/conformance, which runs the
# npm client and stays on Linux), WINE_TIMEOUT (per package, 10m),
# WINE_JOBS (test binaries run at once, 2).
set -euo pipefail
cd "$(dirname "$0")/../.."

GO=${GO:-go}
WINE=${WINE:-$(command -v wine64 || command -v wine || echo /usr/lib/wine/wine64)}
WINE_HOME=${WINE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/modelpub-wine}
WINE_TIMEOUT=${WINE_TIMEOUT:-10m}
MINGW_CC=${MINGW_CC:-x86_64-w64-mingw32-gcc}

export WINEPREFIX="$WINE_HOME/prefix" WINEDEBUG=-all WINEARCH=win64
# No Mono or Gecko install prompts, no window: the tests need neither.
export WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY WAYLAND_DISPLAY
# Wine turns a Windows file name (UTF-16) into a Unix one in the charset of
# the locale. A locale that is not installed (the Makefile's en_US.UTF-8 on
# a fresh machine) means ASCII, and a name such as notes\u202etxt.md, which
# Windows holds, then "does not exist". C.UTF-8 is always there.
export LC_ALL=C.UTF-8

mkdir -p "$WINE_HOME"
start=$(date +%s)

# 1. The prefix, made once.
if [ ! -f "$WINEPREFIX/.modelpub-ready" ]; then
	echo "wine: making the prefix in $WINEPREFIX (once)"
	rm -rf "$WINEPREFIX"
	"$WINE" wineboot -i >/dev/null 2>&1 || true
	"${WINE%64}server" -w 2>/dev/null || wineserver -w 2>/dev/null || true
	[ -d "$WINEPREFIX/drive_c/windows/system32" ] || { echo "wine: wineboot made no prefix in $WINEPREFIX"; exit 1; }
	touch "$WINEPREFIX/.modelpub-ready"
fi

# 2. The ProcessPrng shim, rebuilt when its source changes.
shim="$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
if [ ! -f "$shim" ] || [ build/wine/processprng.c -nt "$shim" ] || [ build/wine/bcryptprimitives.def -nt "$shim" ]; then
	"$MINGW_CC" -O2 -shared -o "$shim" build/wine/processprng.c build/wine/bcryptprimitives.def -lbcrypt
fi

# 3. Wine 8.0 answers STATUS_NOT_IMPLEMENTED to the POSIX-semantics delete
# (FileDispositionInformationEx) that os.RemoveAll uses since Go 1.25 and
# falls back from only on the statuses real Windows versions give; every
# t.TempDir cleanup would fail. The test binaries are built with an overlay
# of that one file that also falls back on Wine's statuses.
goroot=$("$GO" env GOROOT)
at="$goroot/src/internal/syscall/windows/at_windows.go"
ov="$WINE_HOME/overlay"
mkdir -p "$ov"
sed 's/^\tcase STATUS_INVALID_INFO_CLASS, /\tcase NTStatus(0xC0000002), NTStatus(0xC0000010), STATUS_INVALID_INFO_CLASS, /' "$at" >"$ov/at_windows.go"
if cmp -s "$at" "$ov/at_windows.go"; then
	echo "wine: $at has changed: update the Deleteat overlay in $0"
	exit 1
fi
printf '{"Replace":{"%s":"%s"}}\n' "$at" "$ov/at_windows.go" >"$ov/overlay.json"

# 4. Build every test binary in one go command, which compiles the
# packages in parallel and once each; each binary is named after its
# package's last element.
bins="$WINE_HOME/bin"
rm -rf "$bins" && mkdir -p "$bins"
if [ -z "${WINE_PKGS:-}" ]; then
	WINE_PKGS=$(GOOS=windows "$GO" list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' \
		./core/... ./cli/... ./internal/crossos ./internal/ostest | grep -v -e '^$' -e '/core/hub/conformance$')
fi
WINE_PKGS=$(echo $WINE_PKGS) # one line, names separated by single spaces
module=$("$GO" list -m)
dups=$(for pkg in $WINE_PKGS; do echo "${pkg##*/}"; done | sort | uniq -d)
if [ -n "$dups" ]; then
	echo "wine: two packages end in the same name ($dups): their test binaries would collide"
	exit 1
fi
dirs=()
for pkg in $WINE_PKGS; do dirs+=("./${pkg#"$module"/}"); done
build_failed=0
CGO_ENABLED=0 GOOS=windows GOARCH=amd64 "$GO" test -overlay "$ov/overlay.json" -c -o "$bins/" "${dirs[@]}" || build_failed=1
echo "wine: built $(ls "$bins"/*.test.exe 2>/dev/null | wc -l) test binaries in $(($(date +%s) - start)) s"

# 5. The Linux side of the cross-OS comparison.
MODELPUB_SAMEBYTES_OUT="$bins/samebytes-linux.txt" "$GO" test -count=1 \
	-run '^TestSaveIsTheSameOnEveryOS$' ./internal/crossos >/dev/null

# 6. A UNC share for the path tests: Wine serves \\modelpub-unc\c from
# dosdevices/unc, here drive C:, so \\modelpub-unc\c\users\... is the same
# folder as C:\users\....
mkdir -p "$WINEPREFIX/dosdevices/unc/modelpub-unc"
ln -sfn ../../../drive_c "$WINEPREFIX/dosdevices/unc/modelpub-unc/c"
export MODELPUB_TEST_UNC='\\modelpub-unc\c'

# 7. Run them, WINE_JOBS at a time, each in its package folder (testdata/
# is found as on Linux; Wine's Z: drive is /), the longest first.
# -test.short: the long cost measures stay on Linux. build/wine/skip.txt
# lists the tests not run here, each with why. MODELPUB_CREDMAN_IT=1: the
# Credential Manager test writes into this prefix's, not a user's.
WINE_JOBS=${WINE_JOBS:-2}
slow="core/pipeline core/publish core/hub cli core/convert core/hub/hubemu core/torchbin"
ordered=$(for s in $slow; do case " $WINE_PKGS " in *" $module/$s "*) echo "$module/$s";; esac; done
	for pkg in $WINE_PKGS; do case " $slow " in *" ${pkg#"$module"/} "*) ;; *) echo "$pkg";; esac; done)
run_one() {
	local pkg=$1 name=${1#"$module"/} t0 skip
	local exe="$bins/${pkg##*/}.test.exe" log="$bins/${pkg##*/}.log"
	t0=$(date +%s)
	if [ ! -f "$exe" ]; then
		echo "the test binary did not build" >"$log"
		echo "FAIL 0" >"$log.result"
		return
	fi
	skip=$(awk -v p="$pkg" '$1 == p { printf "%s%s", sep, $2; sep = "|" }' build/wine/skip.txt)
	if (cd "$name" && MODELPUB_SAMEBYTES_WANT="$bins/samebytes-linux.txt" MODELPUB_CREDMAN_IT=1 \
		"$WINE" "$exe" -test.short -test.timeout "$WINE_TIMEOUT" \
		${skip:+-test.skip "$skip"} >"$log" 2>&1); then
		echo "ok $(($(date +%s) - t0))" >"$log.result"
	else
		echo "FAIL $(($(date +%s) - t0))" >"$log.result"
	fi
}
for pkg in $ordered; do
	while [ "$(jobs -rp | wc -l)" -ge "$WINE_JOBS" ]; do wait -n || true; done
	run_one "$pkg" &
done
wait
failed=()
for pkg in $WINE_PKGS; do
	log="$bins/${pkg##*/}.log"
	verdict=FAIL secs=0
	[ -f "$log.result" ] && read -r verdict secs <"$log.result"
	if [ "$verdict" = ok ]; then
		echo "ok   $pkg (windows, wine) $secs s"
	else
		echo "FAIL $pkg (windows, wine) $secs s"
		grep -v -e '^=== ' "$log" | tail -40
		failed+=("$pkg")
	fi
done
# 8. The acceptance: the bundle's modelpub.com under Wine saves,
# validates, logs in and publishes to modelpub localhub running here
# (internal/crossos TestWindowsCommandLine), when make test-windows gives
# both programs.
if [ -n "${MODELPUB_WIN_CLI:-}" ] && [ -n "${MODELPUB_LINUX_CLI:-}" ]; then
	t0=$(date +%s)
	log="$bins/acceptance.log"
	if MODELPUB_WINE="$WINE" "$GO" test -count=1 -v -timeout 20m -run '^TestWindowsCommandLine$' ./internal/crossos >"$log" 2>&1 &&
		grep -q -- '--- PASS: TestWindowsCommandLine' "$log"; then
		echo "ok   modelpub.com save, validate, login, publish (windows, wine) $(($(date +%s) - t0)) s"
	else
		echo "FAIL modelpub.com save, validate, login, publish (windows, wine) $(($(date +%s) - t0)) s"
		grep -v -e '^=== ' "$log" | tail -40
		failed+=("acceptance")
	fi
fi
if [ "$build_failed" = 1 ] && [ ${#failed[@]} -eq 0 ]; then
	failed+=("(build)")
fi
"${WINE%64}server" -k 2>/dev/null || wineserver -k 2>/dev/null || true
n=$(echo "$WINE_PKGS" | wc -w)
echo "wine: $n packages in $(($(date +%s) - start)) s"
if [ ${#failed[@]} -gt 0 ]; then
	echo "wine: failed: ${failed[*]} (logs in $bins)"
fi
# The plain closing line: packages passed and failed under Wine.
echo "wine: $((n - ${#failed[@]})) passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
