#!/bin/sh
# install_test.sh BUILD_DIR SOURCE_DIR EXAMPLE_BUILD_DIR [CFLAGS]: what
# `cmake --install` puts in place lets an application link an object from
# `graft compile` exactly as the generated header says: with pkg-config
# (graft-rt.pc) and with the CMake package (find_package(graft-rt)). The
# application is examples/aot/main.c with the object the build compiled.
# CFLAGS: extra compiler and linker flags (the sanitizers of the build).
set -u
build=$1 src=$2 example=$3 flags=${4:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0 passed=0

. "$src/tests/lib.sh"

cmake --install "$build" --prefix "$tmp/inst" >"$tmp/install.log" 2>&1
check "cmake --install" $?
lib=$(dirname "$(find "$tmp/inst" -name libgraft_rt.a | head -1)")
for f in "$lib/libgraft_rt.a" "$lib/pkgconfig/graft-rt.pc" "$lib/cmake/graft-rt/graft-rt-config.cmake" \
         "$tmp/inst/bin/graft"; do
    [ -f "$f" ]
    check "installed $f" $?
done

export PKG_CONFIG_PATH="$lib/pkgconfig"
libs=$(pkg-config --libs graft-rt)
libdir=$(echo "$libs" | sed -n 's/^-L\([^ ]*\) .*/\1/p')
echo "$libs" | grep -q -e "-lgraft_rt -lgomp -lz -lm" && [ -f "$libdir/libgraft_rt.a" ]
check "pkg-config --libs graft-rt: $libs" $?
grep -q -e "-lgraft_rt -lgomp -lz -lm" "$example/cls.h"
check "the header documents the same link line" $?
# shellcheck disable=SC2046,SC2086
cc -o "$tmp/app" "$src/examples/aot/main.c" "$example/cls.o" "$example/mlp.o" -I"$example" $flags \
    $(pkg-config --cflags --libs graft-rt) 2>"$tmp/cc.log"
check "cc main.c cls.o \$(pkg-config --cflags --libs graft-rt)" $?
cat "$tmp/cc.log"
"$tmp/app" "$src/tests/data/ocr_cls" "$src/tests/data/golden/mlp" >"$tmp/app.log" 2>&1
check "the application runs and agrees with ONNX Runtime" $?
cat "$tmp/app.log"

# The CMake package: the example on its own, against the installation.
cmake -S "$src/examples/aot" -B "$tmp/ex" -DCMAKE_PREFIX_PATH="$tmp/inst" \
    -DCMAKE_C_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" >"$tmp/ex.log" 2>&1 &&
    cmake --build "$tmp/ex" >>"$tmp/ex.log" 2>&1
check "examples/aot with find_package(graft-rt) and the installed graft" $?
"$tmp/ex/aot_example" "$src/tests/data/ocr_cls" "$src/tests/data/golden/mlp" >/dev/null 2>&1
check "that example runs" $?
[ "$failures" -eq 0 ] || tail -20 "$tmp/ex.log"

echo "install_test: $passed passed, $failures failed"
[ "$failures" -eq 0 ]
