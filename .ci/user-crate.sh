#!/usr/bin/env bash
# The user's path, end to end: a scratch crate outside the repository
# (.ci/user-crate, copied to a temporary folder) depends on this checkout's
# replisim by path with default-features = false, puts its own buggy store
# under a property test, sees the test fail, runs the reproduction command
# the failure printed, and checks the rerun reproduces the same digest.
# First, its library's buggify! and sometimes! points must be known to its
# tests (replisim's link-time registry across crates).
# The target directory is shared with the repository's, so this is no
# second build of the dependencies.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
crate="$(mktemp -d)/my-store"
cp -r "$repo/.ci/user-crate" "$crate"
sed -i "s|REPLISIM_PATH|$repo|" "$crate/Cargo.toml"
# The same dependency versions as the checkout: nothing new to fetch or build.
cp "$repo/Cargo.lock" "$crate/Cargo.lock"
cd "$crate"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"

echo "== the user crate's buggify! and sometimes! points, seen from its tests"
cargo test --test points 2>&1

echo "== a user crate's property test, expected to fail"
if cargo test --test store > test.log 2>&1; then
    cat test.log
    echo "FAILED: the buggy store passed its property test"
    exit 1
fi
grep -Eq '^[a-z-]+: +violation: ' test.log || { cat test.log; echo "FAILED: no violation reported"; exit 1; }
digest="$(grep -m1 '^digest: ' test.log | cut -d' ' -f2)"
command="$(grep -m1 '^reproduce with: ' test.log | sed 's/^reproduce with: //')"
echo "failure digest: $digest"
echo "printed command: $command"
[ -n "$digest" ] && [ -n "$command" ] || { cat test.log; echo "FAILED: no digest or command printed"; exit 1; }

echo "== the printed command, pasted in the user's crate"
if bash -c "$command" > rerun.log 2>&1; then
    cat rerun.log
    echo "FAILED: the reproduction passed"
    exit 1
fi
grep -q "digest $digest, as recorded" rerun.log || { cat rerun.log; echo "FAILED: the rerun did not reproduce digest $digest"; exit 1; }
echo "the user's path works: the failure reproduced with digest $digest"
