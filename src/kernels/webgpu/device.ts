/**
 * WebGPU device acquisition, in Node (Dawn, via the `webgpu` package) and in a browser (navigator.gpu).
 *
 * Two modes. `realGpuOnly` (what `--backend auto` asks for): a real GPU adapter or nothing, since on
 * the CPU backend a small model decodes far faster than on a software adapter. Otherwise (`--backend
 * webgpu`), in order of preference, a real GPU, then the software adapters that work on a plain Linux box:
 *   - 'gpu':         Dawn's default backend (Vulkan / Metal / D3D12), high-performance adapter. Accepted
 *                    only if adapter.info does not say CPU/software: a lavapipe or SwiftShader adapter
 *                    found this way is skipped here so that the faster llvmpipe below is preferred.
 *   - 'llvmpipe':    Mesa's llvmpipe through Dawn's OpenGL ES backend (EGL surfaceless). Only
 *                    WebGPU *compatibility* mode is offered on GL. The fastest software path we found.
 *   - 'swiftshader': Chromium's SwiftShader Vulkan ICD.
 * Force one with opts.adapter or env ROSE_WEBGPU_ADAPTER=gpu|llvmpipe|swiftshader.
 *
 * Dawn's two "max…BuffersPerPipelineLayout artificially reduced from 90 to 16" lines on llvmpipe are not
 * about the limits we request: Dawn's NormalizeLimits (src/dawn/native/Limits.cpp) clamps the GL
 * driver's own per-layout counts to its internal maximum of 16 while requestAdapter() builds the
 * adapter, before requestDevice() is called, and prints them from native code straight to file
 * descriptor 2, with no toggle to turn them off. Since `auto` never opens a software adapter, they
 * appear only when one is asked for by name.
 *
 * Lifetime (Node): a live device keeps a core busy polling and the process alive; callers must call
 * device.destroy(). The GPU object from the `webgpu` package's create() is made once per candidate and
 * held here for the life of the process (dawnInstances, below), never dropped: see there for why.
 */
import { RoseError } from '../../errors.ts';

export type AdapterChoice = 'gpu' | 'llvmpipe' | 'swiftshader';
const CHOICES: readonly AdapterChoice[] = ['gpu', 'llvmpipe', 'swiftshader'];

export interface OpenWebGpuOptions {
  /** Use only this adapter (default: env ROSE_WEBGPU_ADAPTER, else try all in order). */
  readonly adapter?: AdapterChoice;
  /**
   * Accept a real GPU only, never a software adapter (llvmpipe, lavapipe, SwiftShader), unless one
   * is asked for by name (opts.adapter or ROSE_WEBGPU_ADAPTER). `--backend auto` sets it.
   */
  readonly realGpuOnly?: boolean;
}

/** The adapter in a few words and in full, for the one-line banner and for `--json` / `--verbose`. */
export interface AdapterSummary {
  /** Which of our candidates it is. */
  readonly choice: AdapterChoice;
  /** Short: 'llvmpipe, software' or the GPU's name. */
  readonly label: string;
  readonly software: boolean;
  readonly vendor: string;
  readonly architecture: string;
  readonly device: string;
  readonly description: string;
  /** Dawn's backend ('default' = Vulkan / Metal / D3D12 as the platform has it, 'opengles', 'vulkan'). */
  readonly backend: string;
  readonly featureLevel: 'core' | 'compatibility';
  /** The device's limits that we compute with. */
  readonly limits: Readonly<Record<string, number>>;
}

export interface OpenedWebGpu {
  readonly device: GPUDevice;
  readonly adapterInfo: { vendor: string; architecture: string; device: string; description: string };
  /** Which of our candidates this is, and the Dawn backend / feature level it runs on. */
  readonly choice: AdapterChoice;
  readonly backend: string;
  readonly featureLevel: 'core' | 'compatibility';
  /** A CPU/software adapter: its "device memory" is host RAM. */
  readonly software: boolean;
  /** Host RAM in bytes (Node only): the memory budget of a software adapter. */
  readonly hostMemoryBytes: number | undefined;
  readonly describe: string;
  readonly summary: AdapterSummary;
  /** The navigator.gpu-like object the device came from (in Node, held by this module for the process's life). */
  readonly gpu: GPU;
}

/** The limits we compute with. We request the adapter's real values: the defaults are far lower. */
const WANTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupsPerDimension',
  'maxUniformBufferBindingSize',
  'maxDynamicUniformBuffersPerPipelineLayout',
  'minUniformBufferOffsetAlignment',
  'minStorageBufferOffsetAlignment',
] as const;

const SOFTWARE = /llvmpipe|lavapipe|swiftshader|software|basic render|\bcpu\b/i;

const isNode = (): boolean => typeof process !== 'undefined' && !!process.versions?.node;

interface Candidate {
  choice: AdapterChoice;
  backend: string;
  featureLevel: 'core' | 'compatibility';
  /** Returns a GPU object, or a reason string when this candidate cannot even be tried here. */
  makeGpu: () => Promise<GPU | string>;
  options: GPURequestAdapterOptions;
  acceptSoftware: boolean;
}

/** Env values changed for the candidate being tried, restored if it fails. */
let envBefore: Record<string, string | undefined> = {};

/**
 * Every Dawn instance (the GPU object create() returns) this process has made, by its flags and env,
 * held until the process ends. Why never dropped: the `webgpu` package's GPU object owns the Dawn
 * instance, while its adapters and devices share an AsyncRunner that keeps a raw pointer to it and
 * polls it (wgpuInstanceProcessEvents, from setImmediate) as long as any callback is pending, e.g. a
 * mapAsync, or the device-lost callback that destroy() fires. Once the GPU object is garbage
 * collected, the next poll reads a freed instance: a native crash (SIGSEGV, or glibc's mutex assertion
 * in InstanceBase::ProcessEvents) that no JavaScript can catch. Holding it costs one instance per
 * candidate, and does not keep Node alive: the runner polls only while callbacks are pending.
 * test/kernels/webgpuLifetime.test.ts reproduces the crash in a child process without this.
 */
const dawnInstances = new Map<string, GPU>();

async function dawnCreate(flags: string[], env: Record<string, string>): Promise<GPU> {
  const key = JSON.stringify([flags, env]);
  const made = dawnInstances.get(key);
  if (made) return made;
  // Dynamic: a bundler for the browser never sees this import (the browser path uses navigator.gpu).
  const mod = 'webgpu';
  const { create } = (await import(/* @vite-ignore */ mod)) as { create: (flags: string[]) => GPU };
  // Env must be in place before create(): EGL and the Vulkan loader read it when the instance starts.
  for (const [k, v] of Object.entries(env)) {
    envBefore[k] = process.env[k];
    process.env[k] = v;
  }
  // Dawn rounds timestamp queries to ~65 µs by default (a browser's defence against timing attacks,
  // moot in a local process); a kernel's GPU time is often less than that, so keep full resolution.
  const gpu = create([...flags, 'disable-dawn-features=timestamp_quantization']);
  dawnInstances.set(key, gpu);
  return gpu;
}

/** A failed candidate must not leave, say, VK_ICD_FILENAMES pointing the next Vulkan open at SwiftShader. */
function restoreEnv(): void {
  for (const [k, v] of Object.entries(envBefore)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  envBefore = {};
}

function nodeCandidates(): Candidate[] {
  return [
    {
      choice: 'gpu',
      backend: 'default',
      featureLevel: 'core',
      makeGpu: async () => {
        // On Linux a GPU shows up as a device node. Without one, Dawn's default probe only finds
        // software Vulkan (which we would reject) and prints driver warnings to stderr on the way.
        if (process.platform === 'linux') {
          const { existsSync, readdirSync } = await import('node:fs');
          const nodes = (existsSync('/dev/dri') ? readdirSync('/dev/dri') : []).concat(existsSync('/dev/nvidia0') ? ['nvidia0'] : []);
          if (process.env.ROSE_WEBGPU_ADAPTER !== 'gpu' && nodes.length === 0) return 'no GPU device node (/dev/dri, /dev/nvidia0)';
        }
        return dawnCreate([], {});
      },
      options: { powerPreference: 'high-performance' },
      acceptSoftware: false,
    },
    {
      choice: 'llvmpipe',
      backend: 'opengles',
      featureLevel: 'compatibility',
      // surfaceless: EGL without X or Wayland; keep a value the user set.
      makeGpu: () => dawnCreate(['backend=opengles'], { EGL_PLATFORM: process.env.EGL_PLATFORM ?? 'surfaceless' }),
      options: { featureLevel: 'compatibility' } as GPURequestAdapterOptions,
      acceptSoftware: true,
    },
    {
      choice: 'swiftshader',
      backend: 'vulkan',
      featureLevel: 'core',
      makeGpu: async () => {
        const { existsSync } = await import('node:fs');
        const icd = process.env.VK_ICD_FILENAMES ?? '/usr/lib/chromium/vk_swiftshader_icd.json';
        if (!existsSync(icd)) return `no SwiftShader ICD at ${icd}`;
        return dawnCreate(['backend=vulkan'], { VK_ICD_FILENAMES: icd });
      },
      options: {},
      acceptSoftware: true,
    },
  ];
}

function browserCandidates(): Candidate[] {
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  const make = async (): Promise<GPU | string> => gpu ?? 'navigator.gpu is undefined (no WebGPU in this browser)';
  return [
    {
      choice: 'gpu',
      backend: 'browser',
      featureLevel: 'core',
      makeGpu: make,
      options: { powerPreference: 'high-performance' },
      acceptSoftware: true,
    },
  ];
}

function infoOf(adapter: GPUAdapter): OpenedWebGpu['adapterInfo'] {
  const i = adapter.info ?? ({} as GPUAdapterInfo);
  return { vendor: i.vendor ?? '', architecture: i.architecture ?? '', device: i.device ?? '', description: i.description ?? '' };
}

const mib = (n: number): string => (n >= 1 << 20 ? `${+(n / (1 << 20)).toFixed(1)} MiB` : `${n} B`);

function summarize(c: Candidate, info: OpenedWebGpu['adapterInfo'], software: boolean, limits: GPUSupportedLimits): AdapterSummary {
  const l = limits as unknown as Record<string, number>;
  const all = Object.values(info).join(' ');
  const name = software
    ? `${(SOFTWARE.exec(all)?.[0] ?? c.choice).toLowerCase()}, software`
    : info.device || info.description || [info.vendor, info.architecture].filter((s) => s).join(' ') || 'unknown GPU';
  return {
    choice: c.choice,
    label: name,
    software,
    ...info,
    backend: c.backend,
    featureLevel: c.featureLevel,
    limits: Object.fromEntries(WANTED_LIMITS.filter((k) => typeof l[k] === 'number').map((k) => [k, l[k]])),
  };
}

function describe(c: Candidate, info: OpenedWebGpu['adapterInfo'], limits: GPUSupportedLimits): string {
  const name = [info.vendor, info.architecture, info.device, info.description].filter((s) => s).join(' / ') || 'unknown adapter';
  const l = limits as unknown as Record<string, number>;
  const lim = WANTED_LIMITS.map((k) => `${k}=${/Size$/.test(k) ? mib(l[k]) : l[k]}`).join(', ');
  return `webgpu ${c.choice}: ${name}; backend=${c.backend}, featureLevel=${c.featureLevel}; ${lim}`;
}

/** One candidate: the opened device, or why not. */
async function tryCandidate(c: Candidate, forced: boolean): Promise<OpenedWebGpu | string> {
  const made = await c.makeGpu();
  if (typeof made === 'string') return made;
  const gpu = made;
  const adapter = await gpu.requestAdapter(c.options);
  if (!adapter) return 'no adapter';
  const info = infoOf(adapter);
  const software = SOFTWARE.test(Object.values(info).join(' ')) || !!(adapter.info as { isFallbackAdapter?: boolean })?.isFallbackAdapter;
  // In the automatic order a software adapter behind the default backend waits for the last resort.
  if (software && !c.acceptSoftware && !forced) return `skipped software adapter '${info.device || info.description}'`;
  const requiredLimits: Record<string, number> = {};
  const al = adapter.limits as unknown as Record<string, number>;
  for (const k of WANTED_LIMITS) if (typeof al[k] === 'number') requiredLimits[k] = al[k];
  // GPU timing where the adapter has it (the bench's GPU time per kernel); nothing is timed unless asked.
  const requiredFeatures: GPUFeatureName[] = adapter.features.has('timestamp-query') ? ['timestamp-query'] : [];
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  const isSoftware = software || c.choice !== 'gpu';
  const opened: OpenedWebGpu = {
    device,
    adapterInfo: info,
    choice: c.choice,
    backend: c.backend,
    featureLevel: c.featureLevel,
    software: isSoftware,
    hostMemoryBytes: isNode() ? (await import('node:os')).totalmem() : undefined,
    describe: describe(c, info, device.limits),
    summary: summarize(c, info, isSoftware, device.limits),
    gpu,
  };
  return opened;
}

export async function openWebGpu(opts: OpenWebGpuOptions = {}): Promise<OpenedWebGpu> {
  const forced = opts.adapter ?? (isNode() ? process.env.ROSE_WEBGPU_ADAPTER : undefined);
  if (forced !== undefined && forced !== '' && !CHOICES.includes(forced as AdapterChoice)) {
    throw new RoseError('BACKEND', `unknown WebGPU adapter '${forced}'`, `use one of ${CHOICES.join(', ')}`);
  }
  let candidates = isNode() ? nodeCandidates() : browserCandidates();
  if (forced) candidates = candidates.filter((c) => c.choice === forced);
  else if (opts.realGpuOnly) candidates = candidates.filter((c) => c.choice === 'gpu').map((c) => ({ ...c, acceptSoftware: false }));
  else if (isNode()) candidates.push({ ...candidates[0], acceptSoftware: true }); // last resort: e.g. lavapipe
  const tried: string[] = [];
  for (const c of candidates) {
    envBefore = {};
    let result: OpenedWebGpu | string;
    try {
      result = await tryCandidate(c, !!forced);
    } catch (e) {
      result = (e as Error).message ?? String(e);
    }
    if (typeof result !== 'string') return result;
    tried.push(`${c.choice} (backend=${c.backend}): ${result}`);
    if (isNode()) restoreEnv();
  }
  throw new RoseError(
    'BACKEND',
    `no usable WebGPU adapter (tried ${tried.join('; ') || 'nothing'})`,
    isNode()
      ? 'install a GPU driver, or a software adapter: `apt-get install libegl1 libegl-mesa0 libgles2 mesa-vulkan-drivers` ' +
          '(Mesa llvmpipe via OpenGL ES) or `apt-get install chromium` (SwiftShader); force one with ROSE_WEBGPU_ADAPTER=gpu|llvmpipe|swiftshader'
      : 'use a browser with WebGPU enabled',
  );
}
