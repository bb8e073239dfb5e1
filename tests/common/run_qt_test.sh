#!/usr/bin/env bash
# CTest's entry for one Qt Test suite: run_qt_test.sh <suite executable> [arguments].
# Qt Test exits 0 when functions were skipped (QSKIP), so CTest would list such a suite as Passed and nobody would
# see what did not run. This exits 77 (the suites' SKIP_RETURN_CODE) when the suite passed with skips, so CTest
# lists it as Skipped; the SKIP lines above the totals say what and why. A failure of any kind (failed functions,
# a crash, a sanitizer report at exit) keeps its own non-zero exit code: CTest's SKIP_REGULAR_EXPRESSION would turn
# those into skips too, which is why this is a wrapper and not a regular expression.
set -u
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
"$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] || exit "$rc"
if grep -Eq '^Totals: [0-9]+ passed, 0 failed, [1-9][0-9]* skipped' "$log"; then
    echo "run_qt_test: $(basename "$1") passed with skipped functions (the SKIP lines above): reported as skipped"
    exit 77
fi
exit 0
