#!/usr/bin/env bash
# `npm test`: provisions the machine, builds, then runs the vitest projects unit, integration and e2e
# one after the other (never `long`), and ends with one line `N passed, N failed, N skipped` summed
# from vitest's JSON reports. Exits non-zero when any test or test file failed.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO_ROOT"

bash test/setup/provision.sh
npm run build

REPORT_DIR="$(mktemp -d "${TMPDIR:-/tmp}/regctl-test-reports.XXXXXX")"
trap 'rm -rf "$REPORT_DIR"' EXIT

status=0
for project in unit integration e2e; do
  printf '\n=== vitest project: %s ===\n' "$project"
  if ! npx vitest run --project "$project" --passWithNoTests \
    --reporter=default --reporter=json --outputFile.json="$REPORT_DIR/$project.json"; then
    status=1
  fi
done

# A file that fails to load counts as a failure even though it ran no test.
summary="$(node --input-type=module -e '
import { readFileSync, existsSync } from "node:fs";
let passed = 0, failed = 0, skipped = 0;
const failing = [];
for (const project of ["unit", "integration", "e2e"]) {
  const file = `${process.argv[1]}/${project}.json`;
  if (!existsSync(file)) { failed += 1; console.error(`no report for project ${project}`); continue; }
  const r = JSON.parse(readFileSync(file, "utf8"));
  passed += r.numPassedTests ?? 0;
  failed += r.numFailedTests ?? 0;
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  for (const suite of r.testResults ?? []) {
    const failures = (suite.assertionResults ?? []).filter((a) => a.status === "failed");
    if (suite.status === "failed" && failures.length === 0) {
      failed += 1;
      failing.push({ project, name: `${suite.name} (the file did not load)`, message: suite.message ?? "" });
    }
    for (const a of failures) {
      failing.push({ project, name: `${suite.name} > ${a.fullName}`, message: (a.failureMessages ?? []).join("\n") });
    }
  }
}
// The failures again, last, so that a log cut to its tail still names them.
for (const f of failing) {
  const lines = f.message.split("\n").filter((l) => l.trim() !== "" && !/node_modules|new Promise/.test(l)).slice(0, 15);
  console.log(`\nFAILED [${f.project}] ${f.name.replace(process.cwd() + "/", "")}`);
  for (const line of lines) console.log(`  ${line}`);
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
' "$REPORT_DIR")" || { summary="0 passed, 1 failed"; status=1; }

case "$summary" in
*" 0 failed"*) ;;
*) status=1 ;;
esac
printf '\n%s\n' "$summary"
exit "$status"
