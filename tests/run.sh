#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine with the .NET 10 SDK:
# installs and starts the services the tests need (infra/up.sh), builds, runs every test project,
# and ends with one line "tests: N passed, N failed, N skipped".
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
[ "$(id -u)" = 0 ] || { echo "tests/run.sh: run as root (the sandbox tests mount overlayfs and run runc)" >&2; exit 1; }
infra/up.sh
results="$root/artifacts/test-results"
rm -rf "$results"; mkdir -p "$results"
dotnet build Farm.sln -nologo -v q -clp:NoSummary
# The CLI as ./farm publishes it, compiled ahead of time: the CLI tests run this binary (FARM_TEST_CLI).
dotnet publish cli/Farm.Cli.csproj -c Release -r linux-x64 -o "$root/artifacts/cli" -nologo -v q -clp:NoSummary
export FARM_TEST_CLI="$root/artifacts/cli/farm"
status=0
dotnet test Farm.sln --no-build -nologo --logger "trx" \
  --results-directory "$results" "$@" 2>&1 | tee "$results/console.log" || status=$?
# Sums the per-assembly summaries of a console log: "passed failed skipped".
totals() {
  awk '/^(Passed|Failed)! +- Failed:/ {
         gsub(/,/, ""); for (i = 1; i <= NF; i++) { if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1); if ($i == "Skipped:") s += $(i+1) } }
       END { printf "%d %d %d\n", p, f, s }' "$1"
}
read -r passed failed skipped < <(totals "$results/console.log")
# A test that failed is run once more, alone. One that passes then is reported as flaky (on the console and
# in flaky.txt, never hidden) and does not fail the run; one that fails again does. Only when every failure
# is a test that can be named: an aborted test host or a build error fails the run as before.
flaky="$results/flaky.txt"; : > "$flaky"
failed_tests=$(grep -oP '^\s+Failed \KFarm\.[A-Za-z0-9_.]+' "$results/console.log" | sort -u || true)
# Failures are counted by their "Failed Farm.…" lines only: a test's captured process output may hold other lines
# that start with "Failed" (a worker's "Failed to stop bus" warning did, and kept a run from its rerun).
if [ "$status" -ne 0 ] && [ "$failed" -gt 0 ] && [ "${FARM_TEST_RERUN:-1}" != 0 ] \
   && [ "$(grep -cP '^\s+Failed Farm\.' "$results/console.log")" = "$failed" ] \
   && ! grep -qiE 'test run (was )?aborted|test host process crashed' "$results/console.log"; then
  again=0
  for project in $(printf '%s\n' "$failed_tests" | cut -d. -f1-3 | sort -u); do
    filter=$(printf '%s\n' "$failed_tests" | grep "^$project\." | sed 's/^/FullyQualifiedName=/' | paste -sd '|')
    echo "tests/run.sh: running again, alone, what failed in $project"
    log="$results/rerun-$project.log"
    # It counts only when it ran the tests (a filter that matches nothing passes too) and none failed.
    if dotnet test "tests/$project" --no-build -nologo --logger "trx;LogFilePrefix=rerun" \
         --results-directory "$results/rerun" --filter "$filter" 2>&1 | tee "$log" \
       && read -r p f _ < <(totals "$log") && [ "$p" -gt 0 ] && [ "$f" = 0 ]; then
      printf '%s\n' "$failed_tests" | grep "^$project\." >> "$flaky"
    else
      again=1
    fi
  done
  if [ "$again" = 0 ]; then
    status=0
    passed=$((passed + failed)); failed=0
  fi
fi
line="tests: $passed passed, $failed failed, $skipped skipped"
if [ -s "$flaky" ]; then
  sed 's/^/FLAKY: /' "$flaky"
  [ "$failed" = 0 ] && line="$line, $(grep -c . "$flaky") flaky (failed once, passed alone: artifacts/test-results/flaky.txt)"
fi
# The one line CI reads.
echo "$line"
[ $((passed + failed)) -gt 0 ] || status=3
exit "$status"
