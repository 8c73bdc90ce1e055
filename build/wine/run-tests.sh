#!/usr/bin/env bash
# Runs the tests of core/..., cli/... and internal/crossos built for Windows
# (go test -c, no cgo) under Wine, each in its package folder, then checks
# that a save on Windows writes the bytes a save on Linux writes
# (internal/crossos). make test-windows calls this after installing wine64
# and mingw-w64; make test calls make test-windows.
#
# The Wine prefix lives in WINE_HOME (default: the user cache) and is made
# once (wineboot, about 40 s); then it holds two things that exist for
# these tests only and never go into the Windows bundle:
#   - bcryptprimitives.dll, a shim from processprng.c: Debian 12's Wine 8.0
#     has no ProcessPrng, which the Go runtime calls at start;
#   - nothing else: the other Wine gap is worked around at build time, see
#     overlay below.
#
# Environment: GO (go), WINE (wine64), WINE_HOME, WINE_PKGS (packages to
# test; default all with tests but core/hub/conformance, which runs the
# npm client and stays on Linux), WINE_TIMEOUT (per package, 10m).
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

# 4. Build every test binary.
bins="$WINE_HOME/bin"
rm -rf "$bins" && mkdir -p "$bins"
if [ -z "${WINE_PKGS:-}" ]; then
	WINE_PKGS=$(GOOS=windows "$GO" list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' \
		./core/... ./cli/... ./internal/crossos | grep -v -e '^$' -e '/core/hub/conformance$')
fi
module=$("$GO" list -m)
for pkg in $WINE_PKGS; do
	name=${pkg#"$module"/}
	CGO_ENABLED=0 GOOS=windows GOARCH=amd64 "$GO" test -overlay "$ov/overlay.json" -c \
		-o "$bins/${name//\//_}.test.exe" "./$name"
done
echo "wine: built $(echo "$WINE_PKGS" | wc -w) test binaries in $(($(date +%s) - start)) s"

# 5. The Linux side of the cross-OS comparison.
MODELPUB_SAMEBYTES_OUT="$bins/samebytes-linux.txt" "$GO" test -count=1 \
	-run '^TestSaveIsTheSameOnEveryOS$' ./internal/crossos >/dev/null

# 6. Run them, each in its package folder (testdata/ is found as on Linux;
# Wine's Z: drive is /). -test.short: the long cost measures stay on Linux.
# build/wine/skip.txt lists the tests not run here yet, each with why.
failed=()
for pkg in $WINE_PKGS; do
	name=${pkg#"$module"/}
	t0=$(date +%s)
	log="$bins/${name//\//_}.log"
	skip=$(awk -v p="$pkg" '$1 == p { printf "%s%s", sep, $2; sep = "|" }' build/wine/skip.txt)
	if (cd "$name" && MODELPUB_SAMEBYTES_WANT="$bins/samebytes-linux.txt" \
		"$WINE" "$bins/${name//\//_}.test.exe" -test.short -test.timeout "$WINE_TIMEOUT" \
		${skip:+-test.skip "$skip"} >"$log" 2>&1); then
		echo "ok   $pkg (windows, wine) $(($(date +%s) - t0)) s"
	else
		echo "FAIL $pkg (windows, wine) $(($(date +%s) - t0)) s"
		grep -v -e '^=== ' "$log" | tail -40
		failed+=("$pkg")
	fi
done
"${WINE%64}server" -k 2>/dev/null || wineserver -k 2>/dev/null || true
n=$(echo "$WINE_PKGS" | wc -w)
echo "wine: $n packages in $(($(date +%s) - start)) s"
if [ ${#failed[@]} -gt 0 ]; then
	echo "wine: failed: ${failed[*]} (logs in $bins)"
fi
# The plain closing line: packages passed and failed under Wine.
echo "wine: $((n - ${#failed[@]})) passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
