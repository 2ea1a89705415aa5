/**
 * The teaching page, built and served by Vite:
 *   npm run web         a dev server (http://localhost:5173/), reloading as files change
 *   npm run web:build   the static site in web/dist/: index.html, the bundles (page and worker), and
 *                       rose-micro's files under models/rose-micro/; any static host serves it as is
 *                       (relative URLs, so a sub-path such as GitHub Pages' /<repo>/ works too)
 *
 * The project's src/ is bundled unchanged; its `node:*` imports become stubs that throw if called
 * (node-stubs.ts), since the browser path never calls them.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';
import { viteStaticCopy } from 'vite-plugin-static-copy';
import { builtinName, stubSource } from './node-stubs.ts';

const webDir = dirname(fileURLToPath(import.meta.url));
const repoDir = join(webDir, '..');

/** `node:*` imports → modules whose functions throw (only `node:`-prefixed ones: a dependency's bare 'events' or 'buffer' may be its npm package). */
function nodeStubs(): Plugin {
  const PREFIX = '\0rose-node-stub:';
  return {
    name: 'rose-node-stubs',
    enforce: 'pre',
    resolveId: (id) => (id.startsWith('node:') && builtinName(id) ? PREFIX + id : null),
    load: (id) => (id.startsWith(PREFIX) ? stubSource(id.slice(PREFIX.length)) : null),
  };
}

/** rose-micro's files, beside the page: the checkpoint, its tokenizer, and the held-out questions the page samples. */
const ROSE_MICRO_FILES = [
  'config.json',
  'generation_config.json',
  'model.safetensors',
  'tokenizer.json',
  'tokenizer_config.json',
  'heldout.jsonl',
  'README.md',
];

export default defineConfig({
  root: webDir,
  base: './',
  // No single-page-app fallback: a file a model folder lacks must be a 404, not index.html.
  appType: 'mpa',
  plugins: [
    nodeStubs(),
    viteStaticCopy({ targets: [{ src: ROSE_MICRO_FILES.map((f) => `../weights/rose-micro/${f}`), dest: 'models/rose-micro' }] }),
  ],
  worker: { format: 'es', plugins: () => [nodeStubs()] },
  server: { fs: { allow: [repoDir] } },
  optimizeDeps: { entries: ['index.html', 'page/worker.ts'] },
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 2000 },
});
