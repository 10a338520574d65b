#!/usr/bin/env bash
# Install a build into a temporary prefix, check what landed where, then
# build and run the host example against the installed tree twice: with
# pkg-config (examples/host/Makefile) and with find_package(ntk)
# (examples/host/CMakeLists.txt). Also: a program linked against the
# static library, the installed Lua module under lua5.4, and a DESTDIR
# staging install.
#
#   run.sh BUILD_DIR SOURCE_DIR WORK_DIR LIBDIR LUA_VERSION [SANITIZE [CC]]
set -euo pipefail
build=$1 src=$2 work=$3 libdir=$4 luaver=$5 sanitize=${6:-} cc=${7:-cc}

fail() { echo "install test: FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

flags=()
if [ -n "$sanitize" ]; then
  flags=(-fsanitize="$sanitize" -fno-omit-frame-pointer)
fi
rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix

step "cmake --install into $prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null

step "layout"
for f in "$libdir/libntk.so" "$libdir/libntk.so.0" "$libdir/libntk.a" \
         "$libdir/libntk_lua.a" include/ntk.h include/ntk_lua.h \
         "$libdir/pkgconfig/ntk.pc" "$libdir/pkgconfig/ntk-lua.pc" \
         "$libdir/cmake/ntk/ntkConfig.cmake" "$libdir/cmake/ntk/ntkConfigVersion.cmake" \
         "$libdir/cmake/ntk/ntkTargets.cmake" "lib/lua/$luaver/ntk/core.so" \
         "share/lua/$luaver/ntk/init.lua"; do
  [ -e "$prefix/$f" ] || fail "missing $f"
done
for f in "$src"/lua/ntk/*.lua; do
  cmp -s "$f" "$prefix/share/lua/$luaver/ntk/$(basename "$f")" || fail "not installed: $f"
done
soname=$(objdump -p "$prefix/$libdir/libntk.so" | awk '/SONAME/ {print $2}')
[ "$soname" = libntk.so.0 ] || fail "SONAME is '$soname', expected libntk.so.0"
# The library exports its API and nothing else; the module only its entry.
extra=$(nm -D --defined-only "$prefix/$libdir/libntk.so" | awk '{print $3}' | grep -v '^ntk_[a-z]' || true)
[ -z "$extra" ] || fail "libntk.so exports non-API symbols: $extra"
mod=$(nm -D --defined-only "$prefix/lib/lua/$luaver/ntk/core.so" | awk '{print $3}')
[ "$mod" = luaopen_ntk_core ] || fail "core.so exports: $mod"

step "pkg-config"
export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
version=$(pkg-config --modversion ntk)
want=$(sed -n 's/^#define NTK_VERSION_STRING "\(.*\)"/\1/p' "$src/src/include/ntk.h")
[ "$version" = "$want" ] || fail "pkg-config ntk version $version, ntk.h says $want"
[ "$(pkg-config --variable=prefix ntk)" = "$prefix" ] || fail "ntk.pc prefix: $(pkg-config --variable=prefix ntk)"
[ "$(pkg-config --variable=luadir ntk)" = "$prefix/share/lua/$luaver" ] || fail "ntk.pc luadir"
[ "$(pkg-config --variable=luacdir ntk)" = "$prefix/lib/lua/$luaver" ] || fail "ntk.pc luacdir"
mkdir -p "$work/pc"
cp "$src"/examples/host/host.c "$src"/examples/host/Makefile "$work/pc/"
make -s -C "$work/pc" CC="$cc" CFLAGS="-O1 -Wall -Wextra -Werror ${flags[*]}" \
     LDFLAGS="${flags[*]}" >/dev/null
readelf -d "$work/pc/host" | grep -q 'NEEDED.*libntk\.so\.0' || fail "host does not link libntk.so.0"
"$work/pc/host" >"$work/pc/out.txt" || { cat "$work/pc/out.txt"; fail "host (pkg-config) failed"; }
grep -q "Lua layer from $prefix/share/lua/$luaver" "$work/pc/out.txt" ||
  fail "host (pkg-config) did not use the installed Lua layer"
tail -1 "$work/pc/out.txt"

step "find_package(ntk)"
unset PKG_CONFIG_PATH
cmake -S "$src/examples/host" -B "$work/cm" -DCMAKE_PREFIX_PATH="$prefix" \
      -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_C_COMPILER="$cc" \
      -DCMAKE_C_FLAGS="-Wall -Wextra -Werror ${flags[*]}" \
      -DCMAKE_EXE_LINKER_FLAGS="${flags[*]}" >/dev/null
grep -q "^ntk_DIR:PATH=$prefix/$libdir/cmake/ntk\$" "$work/cm/CMakeCache.txt" ||
  fail "find_package found another ntk: $(grep '^ntk_DIR' "$work/cm/CMakeCache.txt")"
cmake --build "$work/cm" >/dev/null
"$work/cm/host" >"$work/cm/out.txt" || { cat "$work/cm/out.txt"; fail "host (find_package) failed"; }
grep -q "Lua layer from $prefix/share/lua/$luaver" "$work/cm/out.txt" ||
  fail "host (find_package) did not use the installed Lua layer"
tail -1 "$work/cm/out.txt"

step "static library (ntk::ntk_static)"
cmake -S "$src/tests/install/static" -B "$work/st" -DCMAKE_PREFIX_PATH="$prefix" \
      -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_C_COMPILER="$cc" \
      -DCMAKE_C_FLAGS="-Wall -Wextra -Werror ${flags[*]}" \
      -DCMAKE_EXE_LINKER_FLAGS="${flags[*]}" >/dev/null
cmake --build "$work/st" >/dev/null
if readelf -d "$work/st/static_check" | grep -q 'NEEDED.*libntk'; then
  fail "static_check depends on a shared libntk"
fi
"$work/st/static_check"

step "the installed Lua module"
lua_env=()
if [ -n "$sanitize" ]; then
  # lua5.4 is not instrumented: the sanitizer runtime must come first.
  lua_env=(LD_PRELOAD="$("$cc" -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=0)
fi
out=$(env "${lua_env[@]}" \
  LUA_PATH_5_4="$prefix/share/lua/$luaver/?.lua;$prefix/share/lua/$luaver/?/init.lua" \
  LUA_CPATH_5_4="$prefix/lib/lua/$luaver/?.so" \
  lua5.4 -e '
    local ntk = require "ntk"
    local net = ntk.mlp{sizes = {3, 4, 2}, seed = 1}
    local K = net:ntk(ntk.randn(5, 3, 2), {progress = false})
    io.write(package.searchpath("ntk.core", package.cpath), " ", ntk.version, " ", K:rows())')
echo "$out"
[ "$out" = "$prefix/lib/lua/$luaver/ntk/core.so $want 10" ] || fail "lua5.4 with the installed module: $out"

step "DESTDIR staging"
DESTDIR=$work/stage cmake --install "$build" --prefix /opt/ntk >/dev/null
[ -e "$work/stage/opt/ntk/$libdir/libntk.so.0" ] || fail "DESTDIR: no libntk.so.0"
grep -qx 'prefix=/opt/ntk' "$work/stage/opt/ntk/$libdir/pkgconfig/ntk.pc" ||
  fail "DESTDIR: ntk.pc prefix is not /opt/ntk"
[ ! -e /opt/ntk ] || [ -e "$work/stage/opt/ntk" ] || fail "DESTDIR ignored"

rm -rf "$work"
echo "install test: all checks passed"
