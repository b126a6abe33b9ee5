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
# Sum the per-assembly summaries into the one line CI reads.
awk '/^(Passed|Failed)! +- Failed:/ {
       gsub(/,/, ""); for (i = 1; i <= NF; i++) { if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1); if ($i == "Skipped:") s += $(i+1) } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s; if (p + f == 0) exit 3 }' "$results/console.log" || status=1
exit "$status"
