/**
 * `npm run web:harness [-- CHECKPOINT_DIR] [--port N]`: builds the correctness harness and serves it on 127.0.0.1.
 *   /              web/harness/ (index.html, dist/)
 *   /fixtures/     test/fixtures/ (tiny checkpoints with reference prompts)
 *   /checkpoint/   CHECKPOINT_DIR, when given (a folder with config.json and model.safetensors)
 * Open the printed URL in a browser with WebGPU (Chrome/Edge 113+, or with --enable-unsafe-webgpu).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildWeb, webDir } from './build.ts';
import { serveStatic } from './serve.ts';

const args = process.argv.slice(2);
let port = 8787;
let checkpoint: string | undefined;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--port') port = Number(args[++i]);
  else if (args[i] === '--help' || args[i] === '-h') {
    console.log('usage: npm run web:harness [-- CHECKPOINT_DIR] [--port N]');
    process.exit(0);
  } else checkpoint = args[i];
}
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`bad --port ${port}`);
  process.exit(2);
}
if (checkpoint && !existsSync(join(checkpoint, 'config.json'))) {
  console.error(`${checkpoint} has no config.json`);
  process.exit(2);
}

const built = await buildWeb();
console.log(`built ${built.outfile} (${(built.bytes / 1024).toFixed(0)} KiB) in ${built.ms.toFixed(0)} ms`);
const mounts: Record<string, string> = { '/': webDir, '/fixtures/': join(webDir, '..', '..', 'test', 'fixtures') };
if (checkpoint) mounts['/checkpoint/'] = resolve(checkpoint);
const srv = await serveStatic(mounts, port);
const query = checkpoint ? '?checkpoint=checkpoint/' : '';
console.log(`\n  rose-ts web: ${srv.url}${query}\n`);
console.log(`serving on 127.0.0.1 only; ${checkpoint ? `/checkpoint/ → ${resolve(checkpoint)}; ` : ''}Ctrl-C stops`);
const stop = () => void srv.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
