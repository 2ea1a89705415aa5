/**
 * A worker_threads pool that runs the CPU matmul (matmulFast.ts) on every core.
 *
 * Memory. Every array a pooled matmul touches lives in a SharedArrayBuffer (`sharedF32`): the
 * weights once, at upload, and the activations the CpuBackend allocates. The first time an array is
 * used it is registered: its buffer is posted once to every worker (postMessage of a
 * SharedArrayBuffer shares it, it does not copy). A registration is dropped by `release`, or when the
 * array is garbage-collected on this thread (FinalizationRegistry), so workers never pin dead memory.
 *
 * Work split. Only matmul is parallel (> 95% of a step's time); every other op stays on the calling
 * thread. The output rows N are split into `threads` contiguous ranges of whole register blocks; the
 * calling thread computes range 0 itself and worker i computes range i (possibly empty), with the
 * SAME kernel functions, so the result is bit-identical to one thread (each output is one thread's
 * sum). Every worker acknowledges every dispatch, so none can lag behind and read the next job's
 * parameters as its own.
 * Matmuls smaller than `minParallelWork` multiply-adds run on the calling thread alone.
 *
 * Synchronisation: Atomics on one shared Int32Array, not postMessage. Backend.matmul is synchronous,
 * so the caller must block until the workers finish; the only blocking primitives are Atomics.wait
 * and spinning. A dispatch writes the job into the shared control block, bumps a sequence number
 * and (only if a worker sleeps) Atomics.notify; a worker polls the sequence number for up to
 * `spinMicros` (adaptive by default, see CpuPoolOptions), then sleeps in Atomics.wait; it
 * acknowledges by Atomics.add on a done counter (notify only if the caller sleeps).
 * Registrations travel by postMessage on a per-worker MessageChannel and are drained synchronously
 * with receiveMessageOnPort when the worker wakes, so they cost nothing per dispatch.
 * Why Atomics, measured by `npm run bench` (section "dispatch", 2 threads, µs per EMPTY dispatch,
 * × 211 matmuls per SmolLM2-135M decode step; quiet machine / another process busy):
 *   Atomics, polling then wait (this pool, quiet)        0.6 µs  →  0.13 ms per step
 *   Atomics.wait / notify only                            32 / 12 µs  →  6.7 / 2.5 ms per step
 *   postMessage job + Atomics acknowledgement (sync)      56 / 20 µs  →  12 / 4 ms per step
 *   postMessage both ways, awaited (async; for reference) 89 / 31 µs  →  19 / 7 ms per step
 * against a step of ≈ 60 ms (2 threads). A postMessage dispatch pays the message delivery through
 * the worker's event loop AND, matmul being synchronous, a futex wake-up for the answer; a polled
 * shared counter is two orders of magnitude cheaper when the cores are free. When other processes
 * keep the cores busy polling costs ≈ 150 µs, so the pool then sleeps at once ('auto' spin).
 *
 * Lifetime. Workers are unref'd: they never keep Node (or vitest) alive. `destroy()` tells them to
 * leave their loop and terminates them; a process that forgets to destroy still exits.
 */
import { availableParallelism, loadavg } from 'node:os';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { MessageChannel, type MessagePort, Worker, receiveMessageOnPort } from 'node:worker_threads';
import { RoseError } from '../../errors.ts';
import { splitRows } from './matmulFast.ts';
import type { CpuRowsMatmul } from './variants.ts';

// --- the shared control block (Int32Array indices); poolWorker.ts reads the same layout -------
export const CTRL = {
  SEQ: 0, // bumped once per dispatch
  DONE: 1, // workers that finished the current dispatch
  OP: 2, // OP_*
  VARIANT: 3,
  OUT: 4, // registration ids
  X: 5,
  W: 6,
  BIAS: 7, // -1: none
  M: 8,
  N: 9,
  K: 10,
  ERR: 11, // a worker failed the current dispatch (details on its port)
  WORKERS: 12, // workers (threads − 1): each acknowledges every dispatch
  WORKER_SLEEPERS: 13, // workers inside Atomics.wait on SEQ
  CALLER_SLEEPS: 14, // the caller is inside Atomics.wait on DONE
  FATAL: 15, // a worker failed to start (details on its port)
  SPIN_US: 16, // how long threads poll before Atomics.wait, µs (the caller may change it: see 'auto')
  MAIL: 17, // MAIL + i: worker i has registrations to drain
  ROWS: 17 + 64, // ROWS + 2i, ROWS + 2i + 1: worker i's [n0, n1)
  ARENA: 17 + 64 + 128, // OP_WASM_MATMUL: the arena (WebAssembly memory) whose kernels run; VARIANT = export index
  LDO: 17 + 64 + 129, // OP_WASM_MATMUL: out's row stride (floats); OUT/X/W/BIAS are byte addresses, K the row length
  SIZE: 17 + 64 + 130,
} as const;
export const OP_MATMUL = 1;
export const OP_WASM_MATMUL = 4; // a matmul export of the WebAssembly tier (src/kernels/cpu/wasm/)
export const OP_EXIT = 2;
export const OP_NOOP = 3; // an empty dispatch: measures the round trip
export const MAX_THREADS = 64;

/** Messages on a worker's port. */
export type PoolMessage =
  | { kind: 'register'; id: number; buffer: SharedArrayBuffer; byteOffset: number; length: number }
  | { kind: 'release'; id: number }
  // a WebAssembly arena: the worker instantiates the kernels on the (shared) memory
  | { kind: 'arena'; id: number; memory: WebAssembly.Memory; module: WebAssembly.Module };

export interface CpuPoolOptions {
  /** Threads doing matmuls, the calling thread included. Default os.availableParallelism(). */
  threads?: number;
  /**
   * How long (µs) a thread polls the shared counters before sleeping in Atomics.wait, on both sides.
   * Bounded in TIME, not polls. Default 'auto': 50 µs while the machine has a core for each of our
   * threads, 0 (sleep at once) when threads > cores or when other processes keep the cores busy
   * (1-minute load average > cores + 0.5, re-checked every 256 dispatches). Why: a spinning thread
   * stays runnable, so on oversubscribed cores the thread it waits for gets no wake-up preference
   * and a dispatch can take a whole time slice. Measured on this 2-core VM, per empty dispatch:
   * quiet machine 0.6 µs spinning vs 32 µs sleeping; another process busy, 150 µs spinning vs 12 µs
   * sleeping. A ROSE decode step (2 threads): quiet, spinning ≈ 10% faster; busy, ≈ 8% slower.
   */
  spinMicros?: number | 'auto';
  /** Matmuls with fewer multiply-adds (M·N·K) than this run on the calling thread. Default 32768. */
  minParallelWork?: number;
}

export interface CpuPoolStats {
  /** Matmuls split across threads. */
  dispatches: number;
  /** Matmuls run on the calling thread alone (too small to split). */
  inline: number;
}

/** A zero-filled Float32Array over a SharedArrayBuffer: what the pool's workers can see. */
export function sharedF32(length: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(length * 4));
}

/** A copy of `src` in shared memory. */
export function toShared(src: Float32Array): Float32Array {
  const out = sharedF32(src.length);
  out.set(src);
  return out;
}

export const isShared = (a: Float32Array): boolean => a.buffer instanceof SharedArrayBuffer;

// Run from source (tsx) the worker is poolWorker.ts; from the package build (dist/, tsc) it is poolWorker.js.
const workerUrl = new URL(`./poolWorker.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url);

/**
 * The worker's entry. A .ts worker (we run from source, through tsx) is started from a small ES
 * module that first registers tsx's ESM hooks in the worker, then imports the worker module; a boot
 * failure is flagged in shared memory so that the caller, blocked in Atomics.wait, sees it.
 */
function workerEntry(): URL {
  if (!workerUrl.pathname.endsWith('.ts')) return workerUrl;
  const tsxApi = pathToFileURL(
    createRequire(import.meta.url)
      .resolve('tsx/esm/api')
      .replace(/\.cjs$/, '.mjs'),
  ).href;
  const code = `
import { workerData } from 'node:worker_threads';
try {
  (await import(${JSON.stringify(tsxApi)})).register();
  await import(${JSON.stringify(workerUrl.href)});
} catch (e) {
  try { workerData.port.postMessage({ fatal: String((e && e.stack) || e) }); } catch {}
  const ctrl = new Int32Array(workerData.ctrl);
  Atomics.store(ctrl, ${CTRL.FATAL}, 1);
  Atomics.notify(ctrl, ${CTRL.DONE});
}
`;
  return new URL(`data:text/javascript,${encodeURIComponent(code)}`);
}

export class CpuPool {
  readonly threads: number;
  readonly stats: CpuPoolStats = { dispatches: 0, inline: 0 };
  private readonly spinAuto: boolean;
  private spinMicros: number;
  private readonly minParallelWork: number;
  private readonly ctrl: Int32Array;
  private readonly workers: Worker[] = [];
  private readonly ports: MessagePort[] = [];
  private readonly ids = new WeakMap<Float32Array, number>();
  private readonly finalizer: FinalizationRegistry<number>;
  private nextId = 1;
  private destroyed = false;

  constructor(opts: CpuPoolOptions = {}) {
    const threads = opts.threads ?? availableParallelism();
    if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
      throw new RoseError('INPUT', `threads must be an integer in 1..${MAX_THREADS}, got ${threads}`);
    }
    this.threads = threads;
    const spin = opts.spinMicros ?? 'auto';
    this.spinAuto = spin === 'auto' && threads <= availableParallelism();
    this.spinMicros = spin === 'auto' ? (this.spinAuto ? this.autoSpin() : 0) : spin;
    this.minParallelWork = opts.minParallelWork ?? 32768;
    this.ctrl = new Int32Array(new SharedArrayBuffer(CTRL.SIZE * 4));
    this.ctrl[CTRL.WORKERS] = threads - 1;
    this.ctrl[CTRL.SPIN_US] = this.spinMicros;
    this.finalizer = new FinalizationRegistry((id) => this.post({ kind: 'release', id }));
    const entry = workerEntry();
    for (let i = 1; i < threads; i++) {
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(entry, {
        workerData: { ctrl: this.ctrl.buffer, index: i, port: port2 },
        transferList: [port2],
        // Our own flags only: a worker must not inherit e.g. vitest's or tsx's CLI hooks.
        execArgv: [],
      });
      worker.unref();
      port1.unref();
      this.workers.push(worker);
      this.ports.push(port1);
    }
  }

  /**
   * out (M, N) = x (M, K) · wᵀ (+ bias) with `variant` (one of cpuMatmulVariants: the workers find it
   * there by id), split by output rows across the threads. Every array must be shared
   * (sharedF32 / toShared). Returns when all threads are done.
   */
  matmul(
    variant: CpuRowsMatmul,
    out: Float32Array,
    x: Float32Array,
    w: Float32Array,
    bias: Float32Array | undefined,
    M: number,
    N: number,
    K: number,
  ): void {
    this.assertUsable();
    const kernel = variant.rows;
    const block = variant.rowBlock(M);
    const parts = this.threads;
    if (parts === 1 || M * N * K < this.minParallelWork) {
      this.stats.inline++;
      kernel(out, x, w, bias, M, N, K, 0, N);
      return;
    }
    const c = this.ctrl;
    c[CTRL.OP] = OP_MATMUL;
    c[CTRL.VARIANT] = variant.id;
    c[CTRL.OUT] = this.idOf(out, 'out');
    c[CTRL.X] = this.idOf(x, 'x');
    c[CTRL.W] = this.idOf(w, 'w');
    c[CTRL.BIAS] = bias ? this.idOf(bias, 'bias') : -1;
    c[CTRL.M] = M;
    c[CTRL.N] = N;
    c[CTRL.K] = K;
    this.runSplit(N, block, (n0, n1) => kernel(out, x, w, bias, M, N, K, n0, n1));
  }

  /**
   * Writes each worker's share of rows [0, rows) (whole `block`s; ranges past the end are empty:
   * those threads just acknowledge), runs share 0 here with `own`, and waits for the workers.
   */
  private runSplit(rows: number, block: number, own: (n0: number, n1: number) => void): void {
    const c = this.ctrl;
    const parts = this.threads;
    for (let i = 1; i < parts; i++) {
      const [n0, n1] = splitRows(rows, parts, block, i);
      c[CTRL.ROWS + 2 * i] = n0;
      c[CTRL.ROWS + 2 * i + 1] = n1;
    }
    if (this.spinAuto && (this.stats.dispatches & 255) === 0) c[CTRL.SPIN_US] = this.spinMicros = this.autoSpin();
    this.run(() => {
      const [n0, n1] = splitRows(rows, parts, block, 0);
      own(n0, n1);
    });
    this.stats.dispatches++;
  }

  /** Makes a WebAssembly arena known to every worker (the kernels of wasm/ run on it from now on). */
  registerArena(id: number, memory: WebAssembly.Memory, module: WebAssembly.Module): void {
    this.assertUsable();
    this.post({ kind: 'arena', id, memory, module });
  }

  /**
   * A WebAssembly-tier matmul (wasm/module.ts: export number `fn`, arguments as there) over output
   * rows [0, rows), split across the threads in ranges of whole `block`s. `own(n0, n1)` runs the
   * calling thread's share on its own instance of the same arena. Every output is one thread's sum
   * in the kernels' one order, so the split changes no bit.
   */
  wasmMatmul(
    arena: number,
    fn: number,
    args: { out: number; ldo: number; x: number; w: number; bias: number; M: number; K: number },
    rows: number,
    block: number,
    own: (n0: number, n1: number) => void,
  ): void {
    this.assertUsable();
    const parts = this.threads;
    if (parts === 1 || args.M * rows * args.K < this.minParallelWork) {
      this.stats.inline++;
      own(0, rows);
      return;
    }
    const c = this.ctrl;
    c[CTRL.OP] = OP_WASM_MATMUL;
    c[CTRL.VARIANT] = fn;
    c[CTRL.ARENA] = arena;
    c[CTRL.OUT] = args.out;
    c[CTRL.LDO] = args.ldo;
    c[CTRL.X] = args.x;
    c[CTRL.W] = args.w;
    c[CTRL.BIAS] = args.bias;
    c[CTRL.M] = args.M;
    c[CTRL.K] = args.K;
    this.runSplit(rows, block, own);
  }

  /** An empty dispatch to every worker: what the synchronisation alone costs. */
  noop(): void {
    this.assertUsable();
    if (this.threads === 1) return;
    this.ctrl[CTRL.OP] = OP_NOOP;
    this.run(() => {});
  }

  /** Forgets an array: the workers drop their view of it (the memory goes when no one holds it). */
  release(a: Float32Array): void {
    const id = this.ids.get(a);
    if (id === undefined) return;
    this.ids.delete(a);
    this.finalizer.unregister(a);
    this.post({ kind: 'release', id });
  }

  /** Stops and terminates the workers. The pool is unusable afterwards; calling it twice is harmless. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    const c = this.ctrl;
    c[CTRL.OP] = OP_EXIT;
    Atomics.add(c, CTRL.SEQ, 1);
    Atomics.notify(c, CTRL.SEQ);
    for (const w of this.workers) void w.terminate();
    for (const p of this.ports) p.close();
  }

  /** The current spin, µs (see CpuPoolOptions.spinMicros). */
  get spin(): number {
    return this.spinMicros;
  }

  // --- internals ----------------------------------------------------------------------------------

  /** 'auto': spin only while no other process keeps the cores busy. */
  private autoSpin(): number {
    return loadavg()[0] > availableParallelism() + 0.5 ? 0 : 50;
  }

  /** Publishes the job to the workers, runs `own` (share 0) here, and waits for every worker. */
  private run(own: () => void): void {
    const c = this.ctrl;
    c[CTRL.ERR] = 0;
    Atomics.store(c, CTRL.DONE, 0);
    Atomics.add(c, CTRL.SEQ, 1); // the release: every plain write above is visible to a worker that sees it
    if (Atomics.load(c, CTRL.WORKER_SLEEPERS) > 0) Atomics.notify(c, CTRL.SEQ);
    let ownError: unknown;
    try {
      own();
    } catch (e) {
      ownError = e; // still wait: the workers are using the same arrays
    }
    this.waitForWorkers(this.threads - 1);
    if (ownError !== undefined) throw ownError;
    if (c[CTRL.ERR] !== 0) throw new RoseError('BACKEND', `CPU worker pool: ${this.workerErrors() || 'a worker failed'}`);
  }

  private waitForWorkers(expected: number): void {
    const c = this.ctrl;
    let spins = 0;
    let waitedMs = 0;
    const spinUntil = this.spinMicros > 0 ? performance.now() + this.spinMicros / 1000 : 0;
    for (;;) {
      const done = Atomics.load(c, CTRL.DONE);
      if (done >= expected) return;
      if (Atomics.load(c, CTRL.FATAL) !== 0) {
        this.destroy();
        throw new RoseError('BACKEND', `CPU worker pool: a worker failed to start: ${this.workerErrors()}`);
      }
      if ((++spins & 63) !== 0 || performance.now() < spinUntil) continue; // look at the clock every 64 polls
      Atomics.store(c, CTRL.CALLER_SLEEPS, 1);
      // Re-check after announcing the sleep: a worker that finished in between saw no sleeper.
      if (Atomics.load(c, CTRL.DONE) === done) {
        const r = Atomics.wait(c, CTRL.DONE, done, 1000);
        if (r === 'timed-out' && (waitedMs += 1000) % 60000 === 0) {
          process.emitWarning(`CPU worker pool: still waiting for workers after ${waitedMs / 1000} s`);
        }
      }
      Atomics.store(c, CTRL.CALLER_SLEEPS, 0);
    }
  }

  private workerErrors(): string {
    const lines: string[] = [];
    for (const p of this.ports) {
      for (let m = receiveMessageOnPort(p); m; m = receiveMessageOnPort(p)) {
        const msg = m.message as { error?: string; fatal?: string };
        if (msg.error || msg.fatal) lines.push(msg.error ?? msg.fatal!);
      }
    }
    return lines.join('; ');
  }

  private idOf(a: Float32Array, what: string): number {
    let id = this.ids.get(a);
    if (id !== undefined) return id;
    if (!isShared(a)) {
      throw new RoseError(
        'BACKEND',
        `CPU worker pool: the ${what} array is not in shared memory`,
        'allocate it with sharedF32() / toShared()',
      );
    }
    id = this.nextId++;
    this.ids.set(a, id);
    this.finalizer.register(a, id, a);
    this.post({ kind: 'register', id, buffer: a.buffer as SharedArrayBuffer, byteOffset: a.byteOffset, length: a.length });
    return id;
  }

  private post(msg: PoolMessage): void {
    if (this.destroyed) return;
    this.ports.forEach((p, i) => {
      p.postMessage(msg);
      Atomics.store(this.ctrl, CTRL.MAIL + i + 1, 1); // after the post: a worker that sees the flag finds the message
    });
  }

  private assertUsable(): void {
    if (this.destroyed) throw new RoseError('BACKEND', 'the CPU worker pool was destroyed');
  }
}
