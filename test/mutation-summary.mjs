/**
 * The mutation scores, from the runs' own reports: `node test/mutation-summary.mjs [REPORTS...]`
 * reads each group's reports/mutation/<group>/mutation.json (StrykerJS's JSON report, schema 2), and
 * writes test/mutation-scores.json (committed: the README's and test/MUTATION.md's table come from it)
 * and prints that table as Markdown.
 *
 * Score = (killed + timed out) ÷ (killed + timed out + survived + no coverage), Stryker's own. Ignored
 * mutants (a `// Stryker disable` comment, which must say why the mutant is equivalent) are counted
 * apart, never in the score. A report counts only if the source it mutated is the file in this tree,
 * byte for byte: a report of older code is refused, never quoted.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const OUT = 'test/mutation-scores.json';
const reports = process.argv.slice(2);
if (reports.length === 0) {
  const root = 'reports/mutation';
  if (existsSync(root)) for (const g of readdirSync(root).sort()) reports.push(join(root, g, 'mutation.json'));
}
const present = reports.filter((r) => existsSync(r));
if (present.length === 0) {
  console.error(
    `mutation-summary: no report found (${reports.join(', ') || 'reports/mutation/*/mutation.json'}); run npm run mutate:<group> first`,
  );
  process.exit(2);
}

const sha = (text) => createHash('sha256').update(text).digest('hex').slice(0, 16);
const current = (rel) => existsSync(rel) && readFileSync(rel, 'utf8');
// Scores kept from earlier runs stay only while their file is unchanged.
const previous = existsSync(OUT) ? JSON.parse(readFileSync(OUT, 'utf8')) : { files: {} };
const stale = [];
const files = {};
for (const [rel, s] of Object.entries(previous.files)) {
  if (current(rel) !== false && sha(current(rel)) === s.sha256) files[rel] = s;
  else stale.push(`${rel} (changed since its run)`);
}
for (const report of present) {
  const json = JSON.parse(readFileSync(report, 'utf8'));
  const group = report.split('/').at(-2);
  for (const [path, file] of Object.entries(json.files)) {
    const rel = path.replace(/^.*?(src\/)/, '$1');
    if (current(rel) !== file.source) {
      stale.push(`${rel} (${report})`);
      continue;
    }
    const count = (status) => file.mutants.filter((m) => m.status === status).length;
    const c = {
      killed: count('Killed'),
      timeout: count('Timeout'),
      survived: count('Survived'),
      noCoverage: count('NoCoverage'),
      ignored: count('Ignored'),
    };
    const scored = c.killed + c.timeout + c.survived + c.noCoverage;
    files[rel] = {
      group,
      sha256: sha(file.source),
      ...c,
      score: scored ? Math.round((1000 * (c.killed + c.timeout)) / scored) / 10 : null,
    };
  }
}
if (stale.length) {
  console.error(`mutation-summary: scores of other code than this tree's, left out:\n  ${stale.join('\n  ')}`);
}
const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
const sorted = Object.fromEntries(Object.entries(files).sort(([a], [b]) => a.localeCompare(b)));
writeFileSync(OUT, `${JSON.stringify({ checkedAt: commit, files: sorted }, null, 2)}\n`);

const rows = Object.entries(sorted).map(
  ([f, s]) => `| ${f} | ${s.group} | ${s.killed} | ${s.timeout} | ${s.survived} | ${s.noCoverage} | ${s.ignored} | **${s.score}%** |`,
);
console.log(
  [
    '| file | group | killed | timed out | survived | no coverage | ignored (equivalent) | score |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n'),
);
