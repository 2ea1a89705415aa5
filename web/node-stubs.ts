/**
 * The project's src/ runs unchanged in a browser, but some of its modules import node:fs, node:path,
 * node:os or node:worker_threads at top level, for helpers that only the CLI calls (file paths, the
 * CPU worker pool). Bundled for a page, each `node:*` import resolves to a stub module that exports
 * every name of the real module as a function that throws: the bundle loads, and a call that should
 * never happen in a browser fails loudly, naming the function, instead of `undefined is not a function`.
 *
 * Used by both bundlers here: Vite for the teaching page (vite.config.ts) and esbuild for the
 * correctness harness (harness/build.ts).
 */
import { builtinModules, createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const builtins = new Set(builtinModules);

/** `node:x` or a bare builtin (`fs`, `path`, …) → its `node:` name; anything else → undefined. */
export function builtinName(specifier: string): string | undefined {
  const bare = specifier.replace(/^node:/, '');
  return builtins.has(bare) ? `node:${bare}` : undefined;
}

/** An ES module with the export names of Node's builtin `name`, each one a function that throws. */
export function stubSource(name: string): string {
  const real = require(name) as Record<string, unknown>;
  const names = Object.keys(real).filter((k) => /^[A-Za-z_$][\w$]*$/.test(k) && k !== 'default');
  return [
    `const unavailable = (what) => function () { throw new Error(what + ' is not available in a browser (rose-ts web bundle)'); };`,
    ...names.map((k) => `export const ${k} = unavailable(${JSON.stringify(`${name}.${k}`)});`),
    `export default {};`,
  ].join('\n');
}
