/**
 * `npm test`'s runner: vitest over the whole suite, then ONE announced re-run of any test file whose
 * worker process died before it reported a single result.
 *
 * Why: a vitest worker that dies in native code reports nothing, and vitest then lists its file as
 * passed with no tests. That happened in about half the full runs on this 2-core VM until 2026-12-01
 * (test/cli/generate.test.ts, once test/reliability/gpuFaults.test.ts). The cause, found from a core
 * dump and reproduced: the `webgpu` package freed its Dawn instance once our GPU object was collected
 * while a device made from it still had callbacks pending; its next poll (InstanceBase::ProcessEvents)
 * read freed memory. src/kernels/webgpu/device.ts now holds every GPU object for the process's life,
 * and test/kernels/backend.test.ts reproduces the crash without that. This runner stays as a guard
 * against any other native crash: such a file's tests never ran, they are neither passed nor failed.
 * So that file, and only that file, runs again once, said loudly on stderr. A file whose tests ran and
 * FAILED is never re-run: that would turn a broken kernel green. A file that crashes twice fails the run.
 *
 * The JSON report (test-results/vitest.json, which .ci/run counts) ends up holding the re-run's
 * results for the re-run files.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

const REPORT = 'test-results/vitest.json';
const RETRY_REPORT = 'test-results/vitest-rerun.json';
const vitest = (args) => spawnSync(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', ...args], { stdio: 'inherit' }).status ?? 1;

const first = vitest(process.argv.slice(2));
if (first === 0 || !existsSync(REPORT)) process.exit(first);

const report = JSON.parse(readFileSync(REPORT, 'utf8'));
// A file that reported nothing: no test at all (it died while its tests were collected: vitest then
// lists it as "passed" with no tests), or every test still pending. (Outside CI a file skipped on
// purpose looks like the second, but then vitest exits 0 and we never get here.)
const reportedNothing = (f) => f.assertionResults.every((a) => a.status === 'pending' || a.status === 'skipped');
const unreported = report.testResults.filter(reportedNothing);
if (report.numFailedTests > 0 || unreported.length === 0) process.exit(first);

const files = unreported.map((f) => f.name);
process.stderr.write(
  `\n${'!'.repeat(100)}\n!! A vitest worker died before reporting (a native crash, no test failed): re-running once\n` +
    files.map((f) => `!!   ${f}\n`).join('') +
    `${'!'.repeat(100)}\n\n`,
);
rmSync(RETRY_REPORT, { force: true });
const second = vitest([...files, `--outputFile.json=${RETRY_REPORT}`]);
if (!existsSync(RETRY_REPORT)) process.exit(second || 1);

const rerun = JSON.parse(readFileSync(RETRY_REPORT, 'utf8'));
// A file that died again is a failure, counted as one (vitest would list it as passed, with no tests).
for (const f of rerun.testResults.filter(reportedNothing))
  Object.assign(f, { status: 'failed', message: 'its worker process died twice before reporting (a native crash)' });
const byName = new Map(rerun.testResults.map((f) => [f.name, f]));
report.testResults = report.testResults.map((f) => byName.get(f.name) ?? f);
const all = report.testResults.flatMap((f) => f.assertionResults);
const count = (s) => all.filter((a) => a.status === s).length;
Object.assign(report, {
  numPassedTests: count('passed'),
  numFailedTests: count('failed'),
  numPendingTests: count('pending') + count('skipped'),
  numTotalTests: all.length,
  numFailedTestSuites: report.testResults.filter((f) => f.status === 'failed').length,
  rerunAfterWorkerCrash: files,
});
const failed = second !== 0 || rerun.testResults.some((f) => f.status === 'failed');
report.success = !failed;
writeFileSync(REPORT, JSON.stringify(report));
process.exit(failed ? 1 : 0);
