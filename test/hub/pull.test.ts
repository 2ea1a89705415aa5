/**
 * `rose pull` against a fake Hub on 127.0.0.1: the tree API and resolve URLs laid out as huggingface.co
 * serves them (LFS files redirect to a CDN URL with X-Linked-Size / X-Linked-ETag, Range requests answer
 * 206 with Content-Range), so @huggingface/hub's listFiles and downloadFile run unchanged against it.
 */
import { Command } from 'commander';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { registerPull } from '../../src/cli/pull.ts';
import { CpuBackend } from '../../src/kernels/cpu/backend.ts';
import { loadLlama } from '../../src/model/load.ts';
import { defaultPullDir, pullModel, WEIGHTS_DIR } from '../../src/hub/pull.ts';
import { encodeSafetensors, SafetensorsFile } from '../../src/model/safetensors.ts';
import { fixturesDir } from '../helpers/fixtures.ts';
import { roseRejection } from '../helpers/errors.ts';

// --- the fake Hub -------------------------------------------------------------------------------

interface HubFile {
  path: string;
  data: Buffer;
  lfs: boolean;
}
interface HubRepo {
  files: HubFile[];
  /** Only this token may read it (a private or gated repo). */
  token?: string;
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const gitBlobSha1 = (b: Buffer) => createHash('sha1').update(`blob ${b.byteLength}\0`).update(b).digest('hex');
const COMMIT = 'a'.repeat(40);

const repos = new Map<string, HubRepo>();
const blobs = new Map<string, HubFile>(); // sha256 → file, for the CDN URLs
/** Every request: method, path, Range header. */
let requests: { path: string; range?: string }[] = [];
/** One-shot faults for the next body request of a file (not the 1-byte info request). */
const dropAfter = new Map<string, number>(); // file path → bytes sent before the socket is destroyed
const stallAfter = new Map<string, number>(); // file path → bytes sent before the server goes silent

function addRepo(id: string, files: HubFile[], token?: string) {
  repos.set(id, { files, token });
  for (const f of files) if (f.lfs) blobs.set(sha256(f.data), f);
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}

function treeEntry(f: HubFile) {
  if (!f.lfs) return { type: 'file', oid: gitBlobSha1(f.data), size: f.data.byteLength, path: f.path };
  const oid = sha256(f.data);
  const pointer = Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${oid}\nsize ${f.data.byteLength}\n`);
  return {
    type: 'file',
    oid: gitBlobSha1(pointer),
    size: f.data.byteLength,
    path: f.path,
    lfs: { oid, size: f.data.byteLength, pointerSize: pointer.byteLength },
  };
}

/** Serves a file's bytes, honouring `Range: bytes=a-b` like the Hub and its CDN. */
function serve(req: IncomingMessage, res: ServerResponse, f: HubFile, headers: Record<string, string>) {
  const size = f.data.byteLength;
  const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  let [start, end] = [0, size - 1];
  if (m) {
    start = Number(m[1]);
    end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
    if (start >= size || end < start) {
      res.writeHead(416, { 'Content-Range': `bytes */${size}` });
      return res.end();
    }
  }
  const info = m !== null && start === 0 && end === 0; // downloadFile's size/etag probe
  res.writeHead(m ? 206 : 200, {
    ...headers,
    'Accept-Ranges': 'bytes',
    'Content-Type': 'application/octet-stream',
    'Content-Length': String(end - start + 1),
    ...(m ? { 'Content-Range': `bytes ${start}-${end}/${size}` } : {}),
  });
  const body = f.data.subarray(start, end + 1);
  const drop = info ? undefined : dropAfter.get(f.path);
  const stall = info ? undefined : stallAfter.get(f.path);
  if (drop !== undefined) {
    dropAfter.delete(f.path);
    res.write(body.subarray(0, drop), () => setTimeout(() => res.socket?.destroy(), 20));
  } else if (stall !== undefined) {
    stallAfter.delete(f.path);
    res.write(body.subarray(0, stall)); // then nothing: the client must give up by itself
  } else {
    res.end(body);
  }
}

function handle(req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url ?? '/', 'http://x');
  requests.push({ path: url.pathname, range: req.headers.range });
  const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
  if (cdn) {
    const f = blobs.get(cdn[1]);
    return f ? serve(req, res, f, { ETag: `"${cdn[1]}"` }) : json(res, 404, { error: 'no such object' });
  }
  const tree = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/?]+)$/.exec(url.pathname);
  const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
  const m = tree ?? resolve;
  if (!m) return json(res, 404, { error: 'Not Found' });
  const repo = repos.get(m[1]);
  // The Hub answers an anonymous request for a missing or private repo with 401, an authorized one with 404.
  if (!repo || (repo.token && req.headers.authorization !== `Bearer ${repo.token}`)) {
    return json(res, req.headers.authorization ? 404 : 401, { error: 'Repository not found' }, { 'X-Error-Code': 'RepoNotFound' });
  }
  if (decodeURIComponent(m[2]) !== 'main')
    return json(res, 404, { error: `Invalid rev id: ${decodeURIComponent(m[2])}` }, { 'X-Error-Code': 'RevisionNotFound' });
  if (tree) return json(res, 200, repo.files.map(treeEntry));
  const f = repo.files.find((x) => x.path === decodeURIComponent(m[3]));
  if (!f) return json(res, 404, { error: 'Entry not found' }, { 'X-Error-Code': 'EntryNotFound' });
  if (f.lfs) {
    const oid = sha256(f.data);
    res.writeHead(302, {
      Location: `/cdn/${oid}?X-Amz-Signature=x`,
      'X-Linked-Size': String(f.data.byteLength),
      'X-Linked-ETag': `"${oid}"`,
      'X-Repo-Commit': COMMIT,
      'Content-Length': '0',
    });
    return res.end();
  }
  serve(req, res, f, { ETag: `"${gitBlobSha1(f.data)}"`, 'X-Repo-Commit': COMMIT });
}

// --- fixtures -----------------------------------------------------------------------------------

const FIXTURE = join(fixturesDir, 'tiny-mha-f32');
const configBytes = readFileSync(join(FIXTURE, 'config.json'));
const weightBytes = readFileSync(join(FIXTURE, 'model.safetensors'));
const generationBytes = Buffer.from('{"bos_token_id": 1, "eos_token_id": 2}\n');
const text = (path: string, s: string): HubFile => ({ path, data: Buffer.from(s), lfs: false });
const lfs = (path: string, data: Buffer): HubFile => ({ path, data, lfs: true });

/** The fixture split into two shards + an index, as transformers writes a big checkpoint. */
function shards(): { files: HubFile[]; index: Buffer } {
  const file = SafetensorsFile.fromBytes(weightBytes, 'model.safetensors');
  const names = file.names();
  const halves = [names.slice(0, names.length >> 1), names.slice(names.length >> 1)];
  const weightMap: Record<string, string> = {};
  const files = halves.map((part, i) => {
    const shard = `model-0000${i + 1}-of-00002.safetensors`;
    for (const n of part) weightMap[n] = shard;
    const tensors = part.map((n) => {
      const t = file.read(n);
      return { name: n, dtype: 'F32' as const, shape: t.shape, data: t.bytes };
    });
    return lfs(shard, Buffer.from(encodeSafetensors(tensors)));
  });
  file.close();
  const index = Buffer.from(JSON.stringify({ metadata: { total_size: weightBytes.byteLength }, weight_map: weightMap }, null, 2));
  return { files, index };
}
const sharded = shards();

let server: Server;
let hubUrl = '';
let deadUrl = ''; // a port nothing listens on
let tmp = '';

beforeAll(async () => {
  addRepo('rose/tiny', [
    text('.gitattributes', '*.safetensors filter=lfs diff=lfs merge=lfs -text\n'),
    text('README.md', '# tiny\n'),
    text('config.json', configBytes.toString('utf8')),
    text('generation_config.json', generationBytes.toString('utf8')),
    text('special_tokens_map.json', ''), // empty: written without a request
    lfs('model.safetensors', weightBytes),
    lfs('pytorch_model.bin', Buffer.alloc(4096, 7)),
    lfs('model.onnx', Buffer.alloc(2048, 9)),
  ]);
  addRepo('rose/sharded', [
    text('config.json', configBytes.toString('utf8')),
    text('model.safetensors.index.json', sharded.index.toString('utf8')),
    ...sharded.files,
    lfs('consolidated.safetensors', Buffer.alloc(1024, 3)), // Mistral-style duplicate: not in the index, not pulled
    lfs('pytorch_model-00001-of-00001.bin', Buffer.alloc(1024, 5)),
  ]);
  // Shard indexes the Hub serves as they are: not JSON, naming a shard the repo lacks, or one outside the folder.
  const indexRepo = (index: string) => [
    text('config.json', configBytes.toString('utf8')),
    text('model.safetensors.index.json', index),
    ...sharded.files,
  ];
  addRepo('rose/index-not-json', indexRepo('{"weight_map": '));
  addRepo('rose/index-stray-shard', indexRepo('{"weight_map": {"model.norm.weight": "model-00009-of-00009.safetensors"}}'));
  addRepo('rose/index-escapes', indexRepo('{"weight_map": {"model.norm.weight": "../model-00001-of-00002.safetensors"}}'));
  addRepo('rose/bin-only', [text('config.json', configBytes.toString('utf8')), lfs('pytorch_model.bin', Buffer.alloc(4096, 7))]);
  addRepo('rose/not-llama', [text('config.json', '{"model_type": "bert", "hidden_size": 8}'), lfs('model.safetensors', weightBytes)]);
  addRepo('rose/private', [text('config.json', configBytes.toString('utf8')), lfs('model.safetensors', weightBytes)], 'hf_secret');

  server = createServer(handle);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  hubUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const dead = createServer();
  await new Promise<void>((ok) => dead.listen(0, '127.0.0.1', ok));
  deadUrl = `http://127.0.0.1:${(dead.address() as AddressInfo).port}`;
  await new Promise<void>((ok) => dead.close(() => ok()));
  tmp = mkdtempSync(join(tmpdir(), 'rose-pull-'));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((ok) => server.close(() => ok()));
});

beforeEach(() => {
  requests = [];
  dropAfter.clear();
  stallAfter.clear();
  vi.stubEnv('HF_TOKEN', ''); // the machine's own settings must not leak into the tests
  vi.stubEnv('HF_ENDPOINT', '');
});
afterEach(() => vi.unstubAllEnvs());

let n = 0;
const freshDir = () => join(tmp, `pull-${n++}`);

const bodyRequests = (file: string) =>
  requests.filter((r) => r.range !== 'bytes=0-0' && (r.path.endsWith(`/${file}`) || r.path.startsWith('/cdn/')));

// --- the tests ----------------------------------------------------------------------------------

describe('rose pull', { timeout: 10_000 }, () => {
  it('pulls config, generation config and model.safetensors byte for byte, and skips .bin, .onnx and the rest', async () => {
    const dir = freshDir();
    const progress: [string, number, number][] = [];
    const r = await pullModel('rose/tiny', { dir, hubUrl, onProgress: (f, d, t) => progress.push([f, d, t]) });
    expect(r.dir).toBe(dir);
    expect(r.files).toEqual(['config.json', 'generation_config.json', 'special_tokens_map.json', 'model.safetensors']);
    expect(r.bytes).toBe(configBytes.byteLength + generationBytes.byteLength + weightBytes.byteLength);
    expect(r.downloadedBytes).toBe(r.bytes);
    expect(r.skipped).toEqual([]);
    expect(r.config.vocabSize).toBe(512);
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'special_tokens_map.json']);
    expect(readFileSync(join(dir, 'special_tokens_map.json')).byteLength).toBe(0);
    expect(readFileSync(join(dir, 'config.json')).equals(configBytes)).toBe(true);
    expect(readFileSync(join(dir, 'generation_config.json')).equals(generationBytes)).toBe(true);
    expect(readFileSync(join(dir, 'model.safetensors')).equals(weightBytes)).toBe(true);
    expect(requests.some((q) => /pytorch_model|onnx|README|gitattributes/.test(q.path))).toBe(false);
    // Progress ends at the full size of every file.
    expect(progress.filter(([, d, t]) => d === t).map(([f]) => f)).toEqual(r.files);
    expect(progress.at(-1)).toEqual(['model.safetensors', weightBytes.byteLength, weightBytes.byteLength]);

    // loadLlama runs the pulled folder, and it computes what the fixture folder computes.
    const backend = new CpuBackend();
    try {
      const logits = async (d: string) => {
        const model = loadLlama(d, backend);
        const cache = model.newKvCache(1, 4);
        return backend.read(model.prefill(cache, [[1, 5, 9, 42]]).logits);
      };
      const got = await logits(dir);
      expect(got.length).toBe(512);
      expect(got).toEqual(await logits(FIXTURE));
    } finally {
      backend.destroy();
    }
  });

  it('skips files that are already complete, so a second pull downloads nothing', async () => {
    const dir = freshDir();
    await pullModel('rose/tiny', { dir, hubUrl });
    requests = [];
    const r = await pullModel('rose/tiny', { dir, hubUrl });
    expect(r.skipped).toEqual(['config.json', 'generation_config.json', 'special_tokens_map.json', 'model.safetensors']);
    expect(r.downloadedBytes).toBe(0);
    expect(requests.map((q) => q.path)).toEqual(['/api/models/rose/tiny/tree/main']);
  });

  it('pulls exactly the shards the index names, not a stray consolidated.safetensors or .bin', async () => {
    const dir = freshDir();
    const r = await pullModel('rose/sharded', { dir, hubUrl });
    expect(r.files).toEqual([
      'config.json',
      'model.safetensors.index.json',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
    ]);
    expect(readdirSync(dir).sort()).toEqual([...r.files].sort());
    for (const f of sharded.files) expect(readFileSync(join(dir, f.path)).equals(f.data)).toBe(true);
    expect(r.tensors).toBe(SafetensorsFile.fromBytes(weightBytes, 'model.safetensors').names().length);
    const backend = new CpuBackend();
    try {
      expect(loadLlama(dir, backend).config.numHiddenLayers).toBe(2);
    } finally {
      backend.destroy();
    }
  });

  it('a connection dropped mid-file leaves only a .partial, and the next pull resumes it with a Range request', async () => {
    const dir = freshDir();
    dropAfter.set('model.safetensors', 300_000);
    const e = await roseRejection(pullModel('rose/tiny', { dir, hubUrl }));
    expect(e.code).toBe('CHECKPOINT');
    expect(e.message).toMatch(/downloading model\.safetensors of rose\/tiny: the connection .* was cut/);
    expect(e.hint).toMatch(/run the same command again/);
    expect(existsSync(join(dir, 'model.safetensors'))).toBe(false);
    const partial = readFileSync(join(dir, 'model.safetensors.partial'));
    expect(partial.byteLength).toBeLessThanOrEqual(300_000);
    expect(partial.equals(weightBytes.subarray(0, partial.byteLength))).toBe(true);

    requests = [];
    const r = await pullModel('rose/tiny', { dir, hubUrl });
    expect(r.skipped).toEqual(['config.json', 'generation_config.json', 'special_tokens_map.json']);
    expect(r.downloadedBytes).toBe(weightBytes.byteLength - partial.byteLength);
    expect(readFileSync(join(dir, 'model.safetensors')).equals(weightBytes)).toBe(true);
    expect(existsSync(join(dir, 'model.safetensors.partial'))).toBe(false);
    if (partial.byteLength > 0)
      expect(bodyRequests('model.safetensors').map((q) => q.range)).toEqual([`bytes=${partial.byteLength}-${weightBytes.byteLength - 1}`]);
  });

  it('a .partial left by an earlier run is resumed from its end', async () => {
    const dir = freshDir();
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'model.safetensors.partial'), weightBytes.subarray(0, 5000));
    const r = await pullModel('rose/tiny', { dir, hubUrl });
    expect(bodyRequests('model.safetensors').map((q) => q.range)).toEqual([`bytes=5000-${weightBytes.byteLength - 1}`]);
    expect(r.downloadedBytes).toBe(r.bytes - 5000);
    expect(readFileSync(join(dir, 'model.safetensors')).equals(weightBytes)).toBe(true);
    expect(existsSync(join(dir, 'model.safetensors.partial'))).toBe(false);
  });

  it('a stale .partial that does not verify is thrown away and the file fetched again', async () => {
    const dir = freshDir();
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'model.safetensors.partial'), Buffer.alloc(1000, 0xee)); // not the file's first bytes
    const r = await pullModel('rose/tiny', { dir, hubUrl });
    expect(readFileSync(join(dir, 'model.safetensors')).equals(weightBytes)).toBe(true);
    expect(existsSync(join(dir, 'model.safetensors.partial'))).toBe(false);
    // It resumed after the 1000 stale bytes, found the hash wrong, and fetched the whole file once more.
    expect(bodyRequests('model.safetensors').map((q) => q.range)).toEqual([`bytes=1000-${weightBytes.byteLength - 1}`, undefined]);
    expect(r.downloadedBytes).toBe(r.bytes + weightBytes.byteLength - 1000);
  });

  it('a server that goes silent mid-file fails within the stall timeout and leaves no final file', async () => {
    const dir = freshDir();
    stallAfter.set('model.safetensors', 1000);
    const t0 = Date.now();
    const e = await roseRejection(pullModel('rose/tiny', { dir, hubUrl, stallTimeoutMs: 300 }));
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(e.code).toBe('CHECKPOINT');
    expect(e.message).toMatch(/sent nothing for 0\.3 s/);
    expect(existsSync(join(dir, 'model.safetensors'))).toBe(false);
    await pullModel('rose/tiny', { dir, hubUrl });
    expect(readFileSync(join(dir, 'model.safetensors')).equals(weightBytes)).toBe(true);
  });

  it('a missing repo or revision is an INPUT error that says so', async () => {
    const e = await roseRejection(pullModel('rose/no-such-model', { dir: freshDir(), hubUrl }));
    expect(e.code).toBe('INPUT');
    expect(e.message).toMatch(
      /listing the files of rose\/no-such-model: .*401: Repository not found.*does not exist, or it is private or gated/,
    );
    expect(e.hint).toMatch(/--token/);
    const r = await roseRejection(pullModel('rose/tiny', { dir: freshDir(), hubUrl, revision: 'v9' }));
    expect(r.code).toBe('INPUT');
    expect(r.message).toMatch(/rose\/tiny at revision v9 was not found .*404: Invalid rev id: v9/);
  });

  it('a private repo needs its token (from the option or HF_TOKEN)', async () => {
    expect((await roseRejection(pullModel('rose/private', { dir: freshDir(), hubUrl }))).code).toBe('INPUT');
    expect((await roseRejection(pullModel('rose/private', { dir: freshDir(), hubUrl, token: 'hf_wrong' }))).hint).toMatch(
      /account of the token/,
    );
    const dir = freshDir();
    await pullModel('rose/private', { dir, hubUrl, token: 'hf_secret' });
    expect(readFileSync(join(dir, 'model.safetensors')).equals(weightBytes)).toBe(true);
    vi.stubEnv('HF_TOKEN', 'hf_secret');
    vi.stubEnv('HF_ENDPOINT', hubUrl);
    const r = await pullModel('rose/private', { dir: freshDir() });
    expect(r.files).toContain('model.safetensors');
  });

  it('a shard index that is not JSON, names a shard the repo lacks, or leaves the folder fails before any shard is downloaded', async () => {
    const broken = async (repo: string) => {
      requests = [];
      const e = await roseRejection(pullModel(repo, { dir: freshDir(), hubUrl }));
      expect(requests.some((q) => q.path.includes('-of-00002'))).toBe(false);
      return e;
    };
    const notJson = await broken('rose/index-not-json');
    expect(notJson.code).toBe('SAFETENSORS');
    expect(notJson.message).toMatch(/^rose\/index-not-json: model\.safetensors\.index\.json: not valid JSON/);
    expect(notJson.hint).toBe("the repo's shard index is broken; this checkpoint cannot be loaded");
    const stray = await broken('rose/index-stray-shard');
    expect(stray.code).toBe('SAFETENSORS');
    expect(stray.message).toBe(
      'rose/index-stray-shard: model.safetensors.index.json names shard "model-00009-of-00009.safetensors", which is not a .safetensors file of the repo',
    );
    const escapes = await broken('rose/index-escapes');
    expect(escapes.code).toBe('CHECKPOINT');
    expect(escapes.message).toMatch(
      /shard "\.\.\/model-00001-of-00002\.safetensors" \(for "model\.norm\.weight"\) is not a plain file name/,
    );
  });

  it('a repo with only .bin weights, or a config rose-ts cannot run, fails before any weights are downloaded', async () => {
    const dir = freshDir();
    const e = await roseRejection(pullModel('rose/bin-only', { dir, hubUrl }));
    expect(e.code).toBe('CHECKPOINT');
    expect(e.message).toBe('rose/bin-only has only PyTorch .bin weights; rose-ts reads safetensors');
    expect(e.hint).toMatch(/safe_serialization=True/);
    expect(existsSync(dir)).toBe(false);

    requests = [];
    const c = await roseRejection(pullModel('rose/not-llama', { dir: freshDir(), hubUrl }));
    expect(c.code).toBe('CONFIG');
    expect(c.message).toMatch(/^rose\/not-llama is not a model rose-ts can run: /);
    expect(requests.some((q) => q.path.includes('model.safetensors') || q.path.startsWith('/cdn/'))).toBe(false);
  });

  it('an unreachable hub is a clear error', async () => {
    const e = await roseRejection(pullModel('rose/tiny', { dir: freshDir(), hubUrl: deadUrl }));
    expect(e.code).toBe('CHECKPOINT');
    expect(e.message).toMatch(/cannot reach http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    expect(e.hint).toMatch(/HF_ENDPOINT/);
  });

  it('rejects bad repo ids, revisions, tokens and hub URLs before any request', async () => {
    for (const id of ['tiny', 'a/b/c', '../etc', 'rose/..', 'rose/x--y', 'https://huggingface.co/rose/tiny', 'rose/ti ny', '', 'rose/-x']) {
      const e = await roseRejection(pullModel(id, { dir: freshDir(), hubUrl }));
      expect(e.code).toBe('INPUT');
      expect(e.message).toMatch(/is not a Hugging Face model id/);
    }
    expect((await roseRejection(pullModel('rose/tiny', { hubUrl, revision: '../x' }))).code).toBe('INPUT');
    expect((await roseRejection(pullModel('rose/tiny', { hubUrl, token: 'secret' }))).message).toMatch(/not a Hugging Face token/);
    expect((await roseRejection(pullModel('rose/tiny', { hubUrl: 'ftp://x' }))).code).toBe('INPUT');
    expect(requests).toEqual([]);
    expect(defaultPullDir('meta-llama/Llama-3.2-1B')).toBe(join(WEIGHTS_DIR, 'meta-llama--Llama-3.2-1B'));
  });

  it('`rose pull` prints a one-line summary on stdout', async () => {
    let out = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
      out += String(s);
      return true;
    });
    const program = new Command().exitOverride();
    registerPull(program);
    const dir = freshDir();
    await program.parseAsync(['node', 'rose', 'pull', 'rose/tiny', '--dir', dir, '--hub-url', hubUrl]);
    vi.restoreAllMocks();
    expect(out).toMatch(
      new RegExp(
        `^rose pull: rose/tiny → ${dir}: 4 files, 663 kB; downloaded 663 kB in .* s \\(.*/s\\); llama 2 layers, hidden 64, vocab 512, \\d+ tensors \\(float32\\); use --model ${dir}\\n$`,
      ),
    );
    expect(readFileSync(join(dir, 'model.safetensors')).equals(weightBytes)).toBe(true);
  });

  it('`rose pull` draws a bar per file on stderr when it is a terminal', async () => {
    let err = '';
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
      err += String(s);
      return true;
    });
    const tty = Object.getOwnPropertyDescriptor(process.stderr, 'isTTY');
    Object.defineProperty(process.stderr, 'isTTY', { value: true, configurable: true });
    try {
      const program = new Command().exitOverride();
      registerPull(program);
      await program.parseAsync(['node', 'rose', 'pull', 'rose/tiny', '--dir', freshDir(), '--hub-url', hubUrl]);
    } finally {
      if (tty) Object.defineProperty(process.stderr, 'isTTY', tty);
      else delete (process.stderr as { isTTY?: boolean }).isTTY;
      vi.restoreAllMocks();
    }
    expect(err).toMatch(/config\.json \[=+\] 100% 2\.09 kB\/2\.09 kB/);
    expect(err).toMatch(/model\.safetensors \[=+\] 100% 661 kB\/661 kB/);
  });

  it('Ctrl-C stops `rose pull` cleanly: a note on stderr, exit status 130, and the same command resumes', async () => {
    let err = '';
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
      err += String(s);
      return true;
    });
    const dir = freshDir();
    stallAfter.set('model.safetensors', 1000); // the server goes silent mid-file: Ctrl-C lands during the download
    let code = 0;
    const program = new Command().exitOverride();
    registerPull(program, (c) => {
      code = c;
    });
    const pulling = program.parseAsync(['node', 'rose', 'pull', 'rose/tiny', '--dir', dir, '--hub-url', hubUrl]);
    for (let i = 0; i < 200 && !existsSync(join(dir, 'model.safetensors.partial')); i++) await new Promise((r) => setTimeout(r, 10));
    process.emit('SIGINT');
    await pulling;
    vi.restoreAllMocks();
    expect(code).toBe(130);
    expect(err).toMatch(/rose pull: interrupted; run the same command again to resume/);
    expect(existsSync(join(dir, 'model.safetensors'))).toBe(false);
    stallAfter.clear();
    await pullModel('rose/tiny', { dir, hubUrl });
    expect(readFileSync(join(dir, 'model.safetensors')).equals(weightBytes)).toBe(true);
  });
});
