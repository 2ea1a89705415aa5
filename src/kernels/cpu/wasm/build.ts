/**
 * Builds src/kernels/cpu/wasm/kernels.wasm from the AssemblyScript sources in assembly/ with `asc`
 * (npm assemblyscript, pinned in package-lock.json, and with it binaryen): `npm run build:wasm`.
 * The .wasm is committed, so a fresh clone runs with no compile step; `npm run build:wasm -- --check`
 * (run by .ci/run) rebuilds it in memory and fails unless the bytes equal the committed file.
 *
 * The flags, and why:
 *   -O3 --noAssert        speed; the kernels check nothing at run time (the host checks shapes)
 *   --runtime stub        no garbage collector, no allocator: the host owns memory and passes addresses
 *   --importMemory --sharedMemory --maximumMemory 65536 --initialMemory 1
 *                         the memory is made by the host (src/kernels/cpu/wasm/arena.ts) and shared
 *                         with the worker pool; 65536 pages = 4 GiB, wasm32's ceiling (a host memory
 *                         may have a smaller maximum: an imported memory only has to fit inside it)
 *   --enable simd,threads 128-bit SIMD; shared memory needs the threads feature
 * No data segments and no globals come out (checked in test/kernels/wasm*.test.ts): instantiating the
 * module on a memory that already holds weights writes nothing into it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const wasmDir = fileURLToPath(new URL('.', import.meta.url));
export const wasmPath = join(wasmDir, 'kernels.wasm');
const entry = join(wasmDir, 'assembly', 'index.ts');

export const ASC_FLAGS = [
  '-O3',
  '--noAssert',
  '--runtime',
  'stub',
  '--importMemory',
  '--sharedMemory',
  '--initialMemory',
  '1',
  '--maximumMemory',
  '65536',
  '--enable',
  'simd,threads',
] as const;

/** Compiles the AssemblyScript sources; returns the module's bytes. */
export async function buildKernels(): Promise<Uint8Array> {
  const asc = (await import('assemblyscript/asc')).default;
  let binary: Uint8Array | undefined;
  const errors: string[] = [];
  // asc resolves paths against the working directory: give it the entry relative to it, so the
  // module's internal names (and bytes) do not depend on where the repository lives.
  const { error } = await asc.main([relative(process.cwd(), entry), '--outFile', 'kernels.wasm', ...ASC_FLAGS], {
    writeFile: (name, contents) => {
      if (name.endsWith('.wasm')) binary = typeof contents === 'string' ? new TextEncoder().encode(contents) : contents;
    },
    stdout: { write: () => true } as never,
    stderr: {
      write: (s: string | Uint8Array) => {
        errors.push(typeof s === 'string' ? s : new TextDecoder().decode(s));
        return true;
      },
    } as never,
  });
  if (error || !binary) throw new Error(`asc failed: ${error?.message ?? 'no output'}\n${errors.join('')}`);
  return binary;
}

async function main(): Promise<void> {
  const check = process.argv.includes('--check');
  const built = await buildKernels();
  if (!check) {
    writeFileSync(wasmPath, built);
    process.stdout.write(`wrote ${wasmPath} (${built.length} bytes)\n`);
    return;
  }
  const committed = readFileSync(wasmPath);
  if (Buffer.compare(Buffer.from(built), committed) !== 0) {
    process.stderr.write(
      `${wasmPath} (${committed.length} bytes) is NOT what the sources build (${built.length} bytes): run npm run build:wasm and commit the result\n`,
    );
    process.exit(1);
  }
  process.stdout.write(`kernels.wasm: rebuilt from source, ${built.length} bytes, identical to the committed file\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
