/**
 * The kernel-variant registry (src/kernels/registry.ts, cpu/variants.ts, webgpu/variants.ts): its
 * tables are well formed, `--kernel` parses, a variant a backend lacks is refused when it opens, the
 * automatic choice is the documented one, and a forced variant whose constraints a call violates is a
 * RoseError('INPUT'), never a silent fallback. Pure: no GPU (the WebGPU table is plain data).
 */
import { describe, expect, it } from 'vitest';
import type { Tensor, Weight } from '../../src/kernels/backend.ts';
import { CpuBackend } from '../../src/kernels/cpu/backend.ts';
import { cpuTierVariants, cpuVariants } from '../../src/kernels/cpu/variants.ts';
import { chooseVariant, OPS, type OpVariants, parseKernelChoice, type RegistryInfo } from '../../src/kernels/registry.ts';
import { gpuVariants } from '../../src/kernels/webgpu/variants.ts';
import { roseError } from '../helpers/errors.ts';

/** Shapes are all the registry's checks read. */
const tensor = (...shape: number[]): Tensor => ({ shape, size: shape.reduce((a, b) => a * b, 1) });
const weight = (...shape: number[]): Weight => ({ name: 'w', shape, dtype: 'f32' });
const matmulArgs = (M: number) => [tensor(M, 8), tensor(M, 16), weight(8, 16), undefined] as const;

describe.each([
  ['cpu', cpuVariants as RegistryInfo],
  ['webgpu', gpuVariants as RegistryInfo],
])('the %s table', (_backend, registry) => {
  it('has every op, numbered 1, 2, … in order, each with a one-line summary', () => {
    expect(Object.keys(registry).sort()).toEqual([...OPS].sort());
    for (const op of OPS) {
      const { variants } = registry[op];
      expect(
        variants.map((v) => v.id),
        op,
      ).toEqual(variants.map((_, i) => i + 1));
      for (const v of variants) expect(v.summary, `${op} v${v.id}`).toMatch(/^[^\n]{10,120}$/);
    }
  });
});

describe('constraints: declared in words exactly where a check enforces them', () => {
  it.each([
    ['cpu', cpuVariants],
    ['webgpu', gpuVariants],
  ] as const)('%s', (_backend, registry) => {
    for (const op of OPS) {
      for (const v of registry[op].variants as readonly { id: number; constraints?: string; rejects?: unknown }[])
        expect(v.constraints === undefined, `${op} v${v.id}`).toBe(v.rejects === undefined);
    }
  });
});

describe('--kernel values', () => {
  it('parse as op=N, comma-separated or repeated, "v3" accepted', () => {
    expect(parseKernelChoice('matmul=3')).toEqual({ matmul: 3 });
    expect(parseKernelChoice('matmul=v2, attention=1')).toEqual({ matmul: 2, attention: 1 });
    expect(parseKernelChoice('rmsnorm=1', parseKernelChoice('matmul=1'))).toEqual({ matmul: 1, rmsnorm: 1 });
    expect(parseKernelChoice('matmul=2', { matmul: 2 })).toEqual({ matmul: 2 }); // the same twice is harmless
  });

  it.each([
    ['matmul', /is not op=N/],
    ['matmul=x', /is not op=N/],
    ['softmax=1', /there is no op "softmax"/],
  ])('%s is a RoseError naming the problem', (spec, message) => {
    const e = roseError(() => parseKernelChoice(spec));
    expect(e.code).toBe('INPUT');
    expect(e.message).toMatch(message);
    expect(e.hint).toContain('matmul');
  });

  it('an op forced to two variants is refused', () => {
    expect(roseError(() => parseKernelChoice('matmul=1,matmul=3')).message).toMatch(/matmul is forced twice \(v1 and v3\)/);
  });

  it('unfused forces every fused op to v1 (the composition of the separate ops), beside other choices', () => {
    const v1 = { normQkv: 1, ropeKvWrite: 1, matmulAdd: 1, normGateUpSwiglu: 1, normMatmul: 1 }; // the fused ops, by hand
    expect(parseKernelChoice('unfused')).toEqual(v1);
    expect(parseKernelChoice(['matmul=3', 'unfused'])).toEqual({ matmul: 3, ...v1 });
    expect(roseError(() => parseKernelChoice('unfused,matmulAdd=2')).message).toMatch(/matmulAdd is forced twice \(v1 and v2\)/);
  });
});

describe('a backend checks the choice it is given', () => {
  it('a variant it lacks is an INPUT error listing the variants it has', () => {
    const e = roseError(() => new CpuBackend({ kernels: { matmul: 9 } }));
    expect(e.code).toBe('INPUT');
    expect(e.message).toBe('matmul has no variant 9 on the cpu backend');
    expect(e.hint).toMatch(/v1 .*; v2 .*; v3 /);
    expect(roseError(() => new CpuBackend().forceKernels({ rope: 2 })).message).toMatch(/rope has no variant 2/);
  });

  it('describes what it runs, and forceKernels replaces the choice', () => {
    const be = new CpuBackend({ tier: 'ts', kernels: { matmul: 1 } });
    expect(be.description).toMatch(/, matmul v1, /);
    expect(be.kernels).toEqual({ matmul: 1 });
    be.forceKernels({ attention: 1 });
    expect(be.description).toMatch(/, matmul auto \(v2 for M ≤ 8, else v3\), attention v1, /);
    be.forceKernels({});
    expect(be.kernels).toEqual({});
  });
});

describe('choosing a variant', () => {
  it('auto: the CPU takes v2 up to M = 8 and v3 above (v4 / v5 on its WebAssembly tier); WebGPU its matvec (v2) up to M = 4 and the tiled v3 above', () => {
    const pick = (ops: OpVariants<'matmul'>, M: number) => chooseVariant('matmul', 'x', ops, undefined, [...matmulArgs(M)]).id;
    expect([1, 2, 8, 9, 64].map((M) => pick(cpuVariants.matmul, M))).toEqual([2, 2, 2, 3, 3]);
    expect([1, 2, 8, 9, 64].map((M) => pick(cpuTierVariants.wasm.matmul, M))).toEqual([4, 4, 4, 5, 5]); // the WebAssembly tier
    expect([1, 2, 4, 5, 64].map((M) => pick(gpuVariants.matmul, M))).toEqual([2, 2, 2, 3, 3]);
  });

  it('a forced variant runs whatever auto would pick', () => {
    expect(chooseVariant('matmul', 'cpu', cpuVariants.matmul, 1, [...matmulArgs(2)]).id).toBe(1);
    expect(chooseVariant('matmul', 'webgpu', gpuVariants.matmul, 3, [...matmulArgs(1)]).id).toBe(3);
  });

  it('a forced variant whose constraints the call violates is an INPUT error, not a fallback', () => {
    const e = roseError(() => chooseVariant('matmul', 'webgpu', gpuVariants.matmul, 2, [...matmulArgs(5)]));
    expect(e.code).toBe('INPUT');
    expect(e.message).toBe('matmul v2 is forced on the webgpu backend, but it takes only M ≤ 4 and this call has M = 5');
    expect(e.hint).toMatch(/force another variant \(v1 .*\) or let the backend choose/);
  });

  it('an automatic choice the call exceeds is a LIMIT error naming the limit', () => {
    const kc = tensor(1, 4, 1, 300); // (B, S, Hkv, head_dim 300)
    const args = [tensor(1, 300), tensor(1, 300), kc, kc, Int32Array.of(0), 0] as const;
    const e = roseError(() => chooseVariant('attention', 'webgpu', gpuVariants.attention, undefined, [...args]));
    expect(e.code).toBe('LIMIT');
    expect(e.message).toBe('attention: head_dim 300 is beyond the webgpu backend (v1 takes head_dim ≤ 256)');
    const logits = tensor(9, 10);
    const params = { alphas: [], temperature: 1, beta: 0, uniform: 0 };
    const c = roseError(() =>
      chooseVariant('contrastSoftmax', 'webgpu', gpuVariants.contrastSoftmax, undefined, [tensor(10), logits, params]),
    );
    expect(c.message).toBe('contrastSoftmax: 9 rows is beyond the webgpu backend (v1 takes rows ≤ 8)');
  });
});
