#!/bin/sh
# The whole test suite: install what is missing, fetch the example model,
# then build and run every test twice: a normal build with warnings as
# errors, and an ASan+UBSan build. Tests run in parallel, one per core; most
# of their time is single-threaded JIT compilation, and OpenMP threads that
# wait sleep instead of spinning (OMP_WAIT_POLICY=passive) so that parallel
# tests do not steal each other's cores. GRAFT_TEST_JOBS overrides the count.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
sh scripts/fetch-models.sh
for variant in build-test:OFF build-asan:ON; do
    dir=${variant%%:*}
    san=${variant##*:}
    echo "== $dir (sanitizers $san)"
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGRAFT_WERROR=ON -DGRAFT_SANITIZE="$san"
    cmake --build "$dir" -j"$(nproc)"
    OMP_WAIT_POLICY=passive ctest --test-dir "$dir" --output-on-failure --no-tests=error \
        -j"${GRAFT_TEST_JOBS:-$(nproc)}"
done
