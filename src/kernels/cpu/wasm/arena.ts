/**
 * An arena: one shared WebAssembly memory, the kernels instantiated on it, and the allocator that
 * hands out its bytes. The host owns all memory management (the kernels only see addresses).
 *
 * Why several. A wasm32 memory addresses at most 4 GiB, and a kernel can only touch its own memory
 * (multi-memory is not in Node 20). The backend (backend.ts) therefore fills arenas one after another
 * and runs each matmul in the arena of its weight, copying the small activation operands in and out
 * when they live elsewhere. Each arena's limit is WASM32_MAX_BYTES unless a test forces a smaller one.
 *
 * Growth. A memory starts at one page and grows as allocations need it, never past its limit. A
 * shared memory's buffer is never detached when it grows: views made earlier stay valid, which is
 * why tensors can keep one Float32Array view for life.
 *
 * Allocation: first fit over a free list sorted by address, neighbours coalesced on free, the top
 * lowered when the last block is freed. Every block is 64-byte aligned (a cache line; v128 loads
 * never straddle one) and zero-filled. Address 0 is never handed out, so 0 can mean "none".
 */
import { type KernelExports, instantiate } from './module.ts';

export const PAGE_BYTES = 65536;
/** wasm32's ceiling: 65536 pages. */
export const WASM32_MAX_BYTES = 65536 * PAGE_BYTES;
const ALIGN = 64;
const BASE = 64; // the first block starts here: address 0 means "none" to the kernels

const alignUp = (n: number): number => Math.ceil(n / ALIGN) * ALIGN;

interface Block {
  ptr: number;
  bytes: number;
}

export class Arena {
  readonly memory: WebAssembly.Memory;
  readonly kernels: KernelExports;
  /** The most bytes this arena may ever hold (its memory's maximum). */
  readonly limitBytes: number;
  private top = BASE;
  private readonly sizes = new Map<number, number>();
  private readonly free: Block[] = []; // sorted by ptr, no two adjacent

  constructor(
    readonly id: number,
    limitBytes: number,
    readonly module: WebAssembly.Module,
  ) {
    const pages = Math.floor(Math.min(limitBytes, WASM32_MAX_BYTES) / PAGE_BYTES);
    this.limitBytes = pages * PAGE_BYTES;
    this.memory = new WebAssembly.Memory({ initial: 1, maximum: pages, shared: true });
    this.kernels = instantiate(module, this.memory);
  }

  /** Bytes in live blocks. */
  get usedBytes(): number {
    let n = 0;
    for (const b of this.sizes.values()) n += b;
    return n;
  }

  /** The largest block `alloc` could return now. */
  largestFree(): number {
    let best = this.limitBytes - this.top;
    for (const b of this.free) best = Math.max(best, b.bytes);
    return best;
  }

  /** A zero-filled block of at least `bytes` bytes, or undefined when the arena has no room for it. */
  alloc(bytes: number): number | undefined {
    const size = alignUp(Math.max(bytes, 1));
    const i = this.free.findIndex((b) => b.bytes >= size);
    let ptr: number;
    if (i >= 0) {
      const b = this.free[i];
      ptr = b.ptr;
      if (b.bytes === size) this.free.splice(i, 1);
      else {
        b.ptr += size;
        b.bytes -= size;
      }
      new Uint8Array(this.memory.buffer, ptr, size).fill(0); // reused bytes: zero them
    } else {
      if (this.top + size > this.limitBytes) return undefined;
      ptr = this.top;
      this.top += size;
      const have = this.memory.buffer.byteLength;
      if (this.top > have) this.memory.grow(Math.ceil((this.top - have) / PAGE_BYTES)); // fresh pages are zero
    }
    this.sizes.set(ptr, size);
    return ptr;
  }

  /** Returns a block. Freeing an address that is not a live block is a bug of ours: it throws. */
  release(ptr: number): void {
    const size = this.sizes.get(ptr);
    if (size === undefined) throw new Error(`arena ${this.id}: ${ptr} is not a live block`);
    this.sizes.delete(ptr);
    let i = this.free.findIndex((b) => b.ptr > ptr);
    if (i < 0) i = this.free.length;
    this.free.splice(i, 0, { ptr, bytes: size });
    // coalesce with the next, then with the previous
    if (i + 1 < this.free.length && ptr + size === this.free[i + 1].ptr) {
      this.free[i].bytes += this.free[i + 1].bytes;
      this.free.splice(i + 1, 1);
    }
    if (i > 0 && this.free[i - 1].ptr + this.free[i - 1].bytes === ptr) {
      this.free[i - 1].bytes += this.free[i].bytes;
      this.free.splice(i, 1);
      i--;
    }
    // a free block at the top gives its bytes back to the top
    const last = this.free[this.free.length - 1];
    if (last && last.ptr + last.bytes === this.top) {
      this.top = last.ptr;
      this.free.pop();
    }
  }

  f32(ptr: number, length: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, length);
  }
  u8(ptr: number, length: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, ptr, length);
  }
}
