/**
 * A worker of the CPU matmul pool (see pool.ts for the protocol). It runs the same kernels as the
 * calling thread (the row kernels of cpu/variants.ts) on its share of the output rows, and nothing else.
 *
 * Its loop never returns to the event loop while the pool lives: it polls the shared sequence
 * number for up to ctrl[SPIN_US] µs after each job, then sleeps in Atomics.wait, and pulls registrations
 * off its port with receiveMessageOnPort (synchronously) when the caller flags mail.
 */
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { CTRL, OP_EXIT, OP_MATMUL, OP_WASM_MATMUL, type PoolMessage } from './pool.ts';
import { cpuMatmulVariants } from './variants.ts';
import { instantiate, type KernelExports, MATMUL_EXPORTS } from './wasm/module.ts';

const { ctrl: ctrlBuffer, index, port } = workerData as { ctrl: SharedArrayBuffer; index: number; port: MessagePort };
const ctrl = new Int32Array(ctrlBuffer);
const arrays = new Map<number, Float32Array>();
const arenas = new Map<number, KernelExports>(); // the WebAssembly tier's kernels, one instance per arena

function drain(): void {
  for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
    const msg = m.message as PoolMessage;
    if (msg.kind === 'register') arrays.set(msg.id, new Float32Array(msg.buffer, msg.byteOffset, msg.length));
    else if (msg.kind === 'arena') arenas.set(msg.id, instantiate(msg.module, msg.memory));
    else arrays.delete(msg.id);
  }
}

function get(id: number): Float32Array {
  let a = arrays.get(id);
  if (!a) {
    drain(); // the caller posts a registration before the dispatch that uses it
    a = arrays.get(id);
  }
  if (!a) throw new Error(`worker ${index}: unknown array id ${id}`);
  return a;
}

function runMatmul(): void {
  const id = ctrl[CTRL.VARIANT];
  const variant = cpuMatmulVariants.find((v) => v.id === id);
  if (!variant) throw new Error(`worker ${index}: no matmul variant ${id}`);
  const biasId = ctrl[CTRL.BIAS];
  const n0 = ctrl[CTRL.ROWS + 2 * index];
  const n1 = ctrl[CTRL.ROWS + 2 * index + 1];
  variant.rows(
    get(ctrl[CTRL.OUT]),
    get(ctrl[CTRL.X]),
    get(ctrl[CTRL.W]),
    biasId < 0 ? undefined : get(biasId),
    ctrl[CTRL.M],
    ctrl[CTRL.N],
    ctrl[CTRL.K],
    n0,
    n1,
  );
}

function runWasmMatmul(): void {
  let kernels = arenas.get(ctrl[CTRL.ARENA]);
  if (!kernels) {
    drain(); // the arena is posted before the first dispatch that uses it
    kernels = arenas.get(ctrl[CTRL.ARENA]);
  }
  if (!kernels) throw new Error(`worker ${index}: unknown arena ${ctrl[CTRL.ARENA]}`);
  const n0 = ctrl[CTRL.ROWS + 2 * index];
  const n1 = ctrl[CTRL.ROWS + 2 * index + 1];
  if (n0 >= n1) return;
  // addresses travel as Int32: >>> 0 reads them back as the unsigned offsets they are
  kernels[MATMUL_EXPORTS[ctrl[CTRL.VARIANT]]](
    ctrl[CTRL.OUT] >>> 0,
    ctrl[CTRL.LDO],
    ctrl[CTRL.X] >>> 0,
    ctrl[CTRL.W] >>> 0,
    ctrl[CTRL.BIAS] >>> 0,
    ctrl[CTRL.M],
    ctrl[CTRL.K],
    n0,
    n1,
  );
}

let seen = 0;
for (;;) {
  let seq = Atomics.load(ctrl, CTRL.SEQ);
  const spinMicros = ctrl[CTRL.SPIN_US]; // set by the caller, which may adapt it
  const spinUntil = spinMicros > 0 ? performance.now() + spinMicros / 1000 : 0;
  for (let spins = 0; seq === seen; seq = Atomics.load(ctrl, CTRL.SEQ)) {
    if ((++spins & 63) !== 0 || performance.now() < spinUntil) continue; // the clock every 64 polls
    Atomics.add(ctrl, CTRL.WORKER_SLEEPERS, 1);
    Atomics.wait(ctrl, CTRL.SEQ, seen); // returns at once if SEQ moved since the load
    Atomics.sub(ctrl, CTRL.WORKER_SLEEPERS, 1);
  }
  seen = seq;
  const op = ctrl[CTRL.OP];
  if (op === OP_EXIT) break;
  if (Atomics.load(ctrl, CTRL.MAIL + index) !== 0) {
    Atomics.store(ctrl, CTRL.MAIL + index, 0); // before draining: a later post sets it again
    drain();
  }
  try {
    if (op === OP_MATMUL) runMatmul();
    else if (op === OP_WASM_MATMUL) runWasmMatmul();
  } catch (e) {
    port.postMessage({ error: (e as Error).stack ?? String(e) });
    Atomics.store(ctrl, CTRL.ERR, 1);
  }
  // Every worker acknowledges every dispatch (an empty share too), so none can lag a dispatch behind.
  const done = Atomics.add(ctrl, CTRL.DONE, 1) + 1;
  if (done >= ctrl[CTRL.WORKERS] && Atomics.load(ctrl, CTRL.CALLER_SLEEPS) !== 0) Atomics.notify(ctrl, CTRL.DONE);
}
port.close();
