# lib.sh: helpers of the shell tests (sourced by cli_test.sh,
# train_test.sh, unfreeze_test.sh and aot/). The caller sets $tmp (a
# scratch directory) and the counters failures=0 passed=0.

# expect STATUS PATTERN CMD...: runs CMD, checks exit status and that
# stdout+stderr match the grep pattern (empty: any output); the output
# stays in $tmp/out.
expect() {
    want=$1 pattern=$2
    shift 2
    "$@" >"$tmp/out" 2>&1
    got=$?
    if [ "$got" -ne "$want" ] || { [ -n "$pattern" ] && ! grep -q -e "$pattern" "$tmp/out"; }; then
        echo "FAIL: $* (exit $got, expected $want; pattern '$pattern')"
        sed 's/^/    /' "$tmp/out" | head -20
        failures=$((failures + 1))
    else
        passed=$((passed + 1))
    fi
}

# check NAME STATUS: records a result computed elsewhere.
check() {
    if [ "$2" -eq 0 ]; then passed=$((passed + 1)); else
        echo "FAIL: $1"
        failures=$((failures + 1))
    fi
}

# npy_f32 FILE: the values of a little-endian f32 .npy, one a line.
npy_f32() {
    header=$(od -A n -t u2 -j 8 -N 2 "$1" | tr -d ' ')
    od -A n -v -t f4 -j $((10 + header)) "$1" | tr -s ' ' '\n' | sed '/^$/d'
}

# log_losses LOG...: the "loss" of every step line, one a line.
log_losses() {
    cat "$@" | grep '"step"' | sed 's/.*"loss":\([^,}]*\).*/\1/'
}
