/**
 * The WebAssembly tier's memory: the arenas (arena.ts) a CPU backend fills, and how an operand gets
 * to the arena a kernel runs in.
 *
 * Placement. Arenas are filled in order; a new one opens when a block fits in none. A matrix larger
 * than the room of a fresh arena is split by rows across arenas (each chunk a matrix of its own, run
 * chunk by chunk by the matmul). A wasm32 memory addresses at most 4 GiB, so a model past that spans
 * several arenas; a test forces small ones (`arenaBytes`) to run that path on tiny models.
 *
 * Staging. A kernel only sees its own memory, so it runs in one arena (`home`: a matmul in its weight
 * chunk's arena, another op in its largest operand's) and operands that live elsewhere (another arena,
 * or plain JavaScript memory when the TypeScript tier runs a forced WebAssembly variant) are copied in,
 * and the written ones back out. Every arena keeps `stageReserve` bytes free for that: room for at
 * least one activation row of the widest matmul.
 */
import { RoseError } from '../../../errors.ts';
import { Arena } from './arena.ts';

/** A block in an arena. */
export interface Place {
  readonly arena: Arena;
  readonly ptr: number;
}

/** Rows [row0, row0 + rows) of a weight matrix in its stored dtype, contiguous in one arena. */
export interface WeightChunk extends Place {
  readonly row0: number;
  readonly rows: number;
}

/** An f32 operand of a kernel: its values, where they live (if in an arena), and how the kernel uses it. */
export interface Operand {
  readonly data: Float32Array;
  readonly at?: Place;
  /** The kernel reads it (copied in when staged); default true. */
  readonly read?: boolean;
  /** The kernel writes it (copied back out when staged). */
  readonly write?: boolean;
}

const TIER_HINT = 'use the TypeScript CPU tier (--cpu-tier ts) for this model';

export class WasmMemory {
  readonly arenas: Arena[] = [];

  constructor(
    private readonly module: WebAssembly.Module,
    /** The most bytes one arena may hold (4 GiB, or less when a test forces it). */
    readonly arenaBytes: number,
    /** Called with every new arena (the worker pool instantiates the kernels on it). */
    private readonly opened: (arena: Arena) => void,
  ) {}

  /**
   * Room kept free in every arena for staging operands from elsewhere (one activation row at least:
   * 4·(K + N) bytes; 16 MiB holds 30 rows of a 128K-vocab head at K = 8192).
   */
  get stageReserve(): number {
    return Math.min(16 * 2 ** 20, Math.floor(this.arenaBytes / 8));
  }

  /** The arena that kernels with no operand in any arena run in (the first one). */
  get scratch(): Arena {
    return this.arenas[0] ?? this.open();
  }

  /** A zero-filled block of `bytes` in the first arena with room (past the staging reserve), opening one if none has. */
  place(bytes: number, what: string): Place {
    for (const arena of this.arenas) {
      const ptr = this.tryPlace(arena, bytes);
      if (ptr !== undefined) return { arena, ptr };
    }
    const arena = this.open();
    const ptr = this.tryPlace(arena, bytes);
    if (ptr === undefined)
      throw new RoseError(
        'LIMIT',
        `${what} needs ${bytes} bytes in one block, more than a WebAssembly memory holds here (${this.arenaBytes} bytes)`,
        TIER_HINT,
      );
    return { arena, ptr };
  }

  /** A matrix of `N` rows of `rowBytes` stored bytes: in one arena if one has room, else split by rows across fresh ones. */
  placeMatrix(name: string, bytes: Uint8Array, N: number, rowBytes: number): WeightChunk[] {
    const chunks: WeightChunk[] = [];
    let row0 = 0;
    while (row0 < N) {
      let rows = N - row0;
      let placed: Place | undefined;
      for (const arena of this.arenas) {
        const ptr = this.tryPlace(arena, rows * rowBytes);
        if (ptr !== undefined) {
          placed = { arena, ptr };
          break;
        }
      }
      if (!placed) {
        const arena = this.open();
        rows = Math.min(rows, Math.floor((arena.largestFree() - this.stageReserve - 64) / rowBytes));
        if (rows < 1)
          throw new RoseError(
            'LIMIT',
            `one row of weight ${name} (${rowBytes} bytes) does not fit in a WebAssembly memory here (${this.arenaBytes} bytes)`,
            TIER_HINT,
          );
        placed = { arena, ptr: this.tryPlace(arena, rows * rowBytes)! };
      }
      placed.arena.u8(placed.ptr, rows * rowBytes).set(bytes.subarray(row0 * rowBytes, (row0 + rows) * rowBytes));
      chunks.push({ ...placed, row0, rows });
      row0 += rows;
    }
    return chunks;
  }

  release(p: Place): void {
    p.arena.release(p.ptr);
  }

  /** A scratch block of `bytes` in `arena` (past the reserve is fine: that is what it is for), or a LIMIT error. */
  stage(arena: Arena, bytes: number): number {
    const ptr = this.alloc(arena, bytes);
    if (ptr === undefined)
      throw new RoseError('LIMIT', `no room left in WebAssembly memory ${arena.id} to stage a kernel operand of ${bytes} bytes`);
    return ptr;
  }

  /** Runs `body` with a `stage` (bytes → a scratch block in `arena`); every block it staged is released when it ends. */
  staging<T>(arena: Arena, body: (stage: (bytes: number) => number) => T): T {
    const staged: number[] = [];
    try {
      return body((bytes) => {
        const ptr = this.stage(arena, bytes);
        staged.push(ptr);
        return ptr;
      });
    } finally {
      for (const p of staged) arena.release(p);
    }
  }

  /**
   * How many of `rows` rows of `bytesPerRow` staged bytes each fit in the room left in `arena` (all of
   * them when nothing is staged); a LIMIT error naming `what` when not even one does.
   */
  rowsThatFit(arena: Arena, bytesPerRow: number, rows: number, what: string): number {
    // 128: the allocator's alignment and header slack for the two blocks a piece stages.
    const piece = bytesPerRow === 0 ? rows : Math.min(rows, Math.floor((arena.largestFree() - 128) / bytesPerRow));
    if (piece < 1) throw new RoseError('LIMIT', `no room left in WebAssembly memory ${arena.id} to stage ${what}`);
    return piece;
  }

  /**
   * Runs `kernel` in `home` with the address of every operand there: operands that live elsewhere
   * are staged (copied in if read, back out if written) for the call. The addresses come in the
   * operands' order.
   */
  withOperands(home: Arena, operands: readonly Operand[], kernel: (ptrs: number[]) => void): void {
    this.staging(home, (stage) => {
      const ptrs = operands.map((o) => {
        if (o.at?.arena === home) return o.at.ptr;
        const ptr = stage(4 * o.data.length);
        if (o.read !== false) home.f32(ptr, o.data.length).set(o.data);
        return ptr;
      });
      kernel(ptrs);
      operands.forEach((o, i) => {
        if (o.write && o.at?.arena !== home) o.data.set(home.f32(ptrs[i], o.data.length));
      });
    });
  }

  /** The arena most of these operands' bytes live in (the scratch arena when none is in one): where their kernel runs. */
  homeOf(operands: readonly Operand[]): Arena {
    const bytes = new Map<Arena, number>();
    for (const o of operands) if (o.at) bytes.set(o.at.arena, (bytes.get(o.at.arena) ?? 0) + o.data.length);
    let best: Arena | undefined;
    for (const [a, n] of bytes) if (!best || n > bytes.get(best)!) best = a;
    return best ?? this.scratch;
  }

  // --- internals ----------------------------------------------------------------------------------

  /** A block only where the staging reserve stays free after it. */
  private tryPlace(arena: Arena, bytes: number): number | undefined {
    return arena.largestFree() >= bytes + this.stageReserve + 64 ? this.alloc(arena, bytes) : undefined;
  }

  private alloc(arena: Arena, bytes: number): number | undefined {
    try {
      return arena.alloc(bytes);
    } catch (e) {
      // memory.grow refused by the engine or the OS: the machine is out of memory, not the arena
      throw new RoseError('LIMIT', `could not grow WebAssembly memory ${arena.id} by ${bytes} bytes: ${(e as Error).message}`);
    }
  }

  private open(): Arena {
    const arena = new Arena(this.arenas.length, this.arenaBytes, this.module);
    this.arenas.push(arena);
    this.opened(arena);
    return arena;
  }
}
