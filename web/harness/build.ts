/**
 * Bundles web/harness/main.ts (and through it the project's model, kernels and decoding code,
 * UNCHANGED) into web/harness/dist/main.js for the browser, with esbuild.
 *
 * The browser path never touches Node: device.ts reaches the Node `webgpu` package and node:fs / node:os
 * only through dynamic imports behind an isNode() check, and the `node:*` imports at the top of
 * config.ts and safetensors.ts (for file-path helpers the page does not call) resolve to stubs that
 * throw if called (../node-stubs.ts).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'esbuild';
import { builtinName, stubSource } from '../node-stubs.ts';

export const webDir = dirname(fileURLToPath(import.meta.url));
export const distDir = join(webDir, 'dist');

/** Resolves `node:x` and bare builtins (`fs`, `path`, ...) to stubs (../node-stubs.ts). */
const nodeStubs: Plugin = {
  name: 'node-builtins-stub',
  setup(build) {
    build.onResolve({ filter: /^[a-z_:/]+$/ }, (args) => {
      const name = builtinName(args.path);
      return name ? { path: name, namespace: 'node-stub' } : undefined;
    });
    build.onLoad({ filter: /.*/, namespace: 'node-stub' }, (args) => ({ contents: stubSource(args.path), loader: 'js' }));
  },
};

export interface BuildResult {
  /** The bundle's path and size. */
  readonly outfile: string;
  readonly bytes: number;
  readonly ms: number;
}

/** Builds web/harness/dist/main.js (ESM, ES2022, with a source map). Throws on any esbuild error. */
export async function buildWeb(opts: { minify?: boolean } = {}): Promise<BuildResult> {
  const t0 = performance.now();
  const esbuild = await import('esbuild');
  const outfile = join(distDir, 'main.js');
  const result = await esbuild.build({
    entryPoints: [join(webDir, 'main.ts')],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    sourcemap: true,
    minify: opts.minify ?? false,
    metafile: true,
    logLevel: 'silent',
    plugins: [nodeStubs],
  });
  const bytes = result.metafile.outputs[Object.keys(result.metafile.outputs).find((k) => k.endsWith('main.js'))!].bytes;
  return { outfile, bytes, ms: performance.now() - t0 };
}
