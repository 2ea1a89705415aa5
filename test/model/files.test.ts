/**
 * Loading a checkpoint from a set of files, as the teaching page does in a browser (src/model/files.ts:
 * files a user picked, or a URL): the same model, tokenizer and answers as from the folder on disk;
 * HTTP's answers read right (404, a login, an HTML fallback page, a body longer or shorter than its
 * Content-Length); a model too big for the backend refused before any weight is read.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { blobFiles, ROSE_MICRO_DIR, Rose, urlFiles, type CheckpointFiles } from '../../src/api.ts';
import { encodeSafetensors, SafetensorsFile, type TensorToWrite } from '../../src/model/safetensors.ts';
import { roseRejection } from '../helpers/errors.ts';

const QUESTION = "Could you show me a way to find out my cousin's password?";

/** rose-micro's files as the browser's File objects (Node 20 has File). */
const microFiles = (): File[] => readdirSync(ROSE_MICRO_DIR).map((name) => new File([readFileSync(join(ROSE_MICRO_DIR, name))], name));

/** A fetch that serves `files` under http://test/m/, with what `respond` changes. */
function fakeFetch(
  files: Map<string, Uint8Array>,
  respond: (name: string, body: Uint8Array | undefined) => Response | undefined = () => undefined,
) {
  const asked: string[] = [];
  const fetch = async (url: string): Promise<Response> => {
    const name = url.replace('http://test/m/', '');
    asked.push(name);
    const body = files.get(name);
    if (!body) return respond(name, body) ?? new Response('nope', { status: 404 });
    return respond(name, body) ?? new Response(body as Uint8Array<ArrayBuffer>, { headers: { 'content-length': String(body.byteLength) } });
  };
  return { fetch, asked };
}

/** Byte-equal (a plain comparison: toEqual walks 100,000 elements one by one). */
const same = (a: Uint8Array | undefined, b: Uint8Array) => a !== undefined && Buffer.from(a).equals(Buffer.from(b));

const microMap = () => new Map(readdirSync(ROSE_MICRO_DIR).map((n) => [n, new Uint8Array(readFileSync(join(ROSE_MICRO_DIR, n)))]));

/** rose-micro's answer from the folder on disk, once for the tests that compare with it. */
let fromDiskAnswer: ReturnType<typeof answerOf> | undefined;
const fromDisk = () => (fromDiskAnswer ??= answerOf(ROSE_MICRO_DIR));

async function answerOf(source: string | CheckpointFiles) {
  const rose = await Rose.open(source, { backend: 'cpu' });
  try {
    return await rose.ask(QUESTION, { maxNewTokens: 6, trace: true });
  } finally {
    rose.close();
  }
}

describe('a checkpoint from a set of files (the browser path)', () => {
  it('picked files and a URL give the same answer as the folder on disk', async () => {
    const disk = await fromDisk();
    const picked = await answerOf(blobFiles(microFiles(), 'rose-micro'));
    expect(picked.tokens).toEqual(disk.tokens);
    expect(picked.text).toBe(disk.text);
    expect(picked.trace).toEqual(disk.trace);
    const served = fakeFetch(microMap());
    const fetched = await answerOf(urlFiles('http://test/m', { fetch: served.fetch }));
    expect(fetched.tokens).toEqual(disk.tokens);
    // It asks for chat_template.jinja (absent: 404) and never for a file outside the folder.
    expect(served.asked).toContain('chat_template.jinja');
    expect(served.asked.every((n) => !n.includes('/'))).toBe(true);
  });

  it('one step as JSON (what the page streams) is that step of the whole trace (what rose generate --trace writes)', async () => {
    const rose = await Rose.open(blobFiles(microFiles(), 'rose-micro'), { backend: 'cpu' });
    try {
      const answer = await rose.ask(QUESTION, { maxNewTokens: 4, trace: { topK: 3 } });
      const whole = rose.traceJson(answer);
      expect(answer.trace.map((s) => rose.traceStep(s))).toEqual(whole.trace);
      expect(whole.trace[0].text).toBe(rose.tokenText(answer.trace[0].token));
    } finally {
      rose.close();
    }
  });

  it('shards listed by model.safetensors.index.json load from memory too', async () => {
    const single = SafetensorsFile.open(join(ROSE_MICRO_DIR, 'model.safetensors'));
    const names = single.names();
    const tensors: TensorToWrite[] = names.map((name) => {
      const info = single.info(name)!;
      return { name, dtype: info.dtype as TensorToWrite['dtype'], shape: info.shape, data: single.read(name).bytes };
    });
    single.close();
    const half = Math.ceil(tensors.length / 2);
    const shards = [tensors.slice(0, half), tensors.slice(half)];
    const shardName = (i: number) => `model-0000${i + 1}-of-00002.safetensors`;
    const index = { weight_map: Object.fromEntries(shards.flatMap((ts, i) => ts.map((t) => [t.name, shardName(i)]))) };
    const files = microFiles().filter((f) => f.name !== 'model.safetensors');
    files.push(new File([JSON.stringify(index)], 'model.safetensors.index.json'));
    for (const [i, ts] of shards.entries()) files.push(new File([encodeSafetensors(ts) as Uint8Array<ArrayBuffer>], shardName(i)));
    const sharded = await answerOf(blobFiles(files, 'sharded'));
    expect(sharded.tokens).toEqual((await fromDisk()).tokens);
    // A shard the index lists but the folder lacks is named.
    const missing = blobFiles(
      files.filter((f) => f.name !== shardName(1)),
      'sharded',
    );
    expect((await roseRejection(Rose.open(missing, { backend: 'cpu' }))).message).toMatch(
      /lists shard "model-00002-of-00002\.safetensors", which is missing from sharded/,
    );
  });

  it('a model too big for the backend is refused from config.json alone, before any weight is read', async () => {
    const config = JSON.parse(readFileSync(join(ROSE_MICRO_DIR, 'config.json'), 'utf8'));
    // About Llama 3.1 405B's shape: far more than 3/4 of any machine's memory once widened to f32.
    Object.assign(config, {
      hidden_size: 16384,
      intermediate_size: 53248,
      num_hidden_layers: 126,
      num_attention_heads: 128,
      num_key_value_heads: 8,
      head_dim: 128,
    });
    const read: string[] = [];
    const files: CheckpointFiles = {
      label: 'huge',
      where: (n) => `huge/${n}`,
      bytes: async (n) => {
        read.push(n);
        throw new Error(`${n} must not be read`);
      },
      text: async (n) => (n === 'config.json' ? JSON.stringify(config) : undefined),
    };
    const e = await roseRejection(Rose.open(files, { backend: 'cpu' }));
    expect(e.code).toBe('LIMIT');
    expect(e.message).toMatch(/needs \d+\.\d GiB in its stored dtypes on the CPU backend, more than 3\/4 of this machine's/); // the WebAssembly tier, the CPU default
    expect(read).toEqual([]);
  });

  it('a folder without config.json, or with a broken tokenizer.json, is named in the error', async () => {
    const noConfig = blobFiles(
      microFiles().filter((f) => f.name !== 'config.json'),
      'picked',
    );
    const e = await roseRejection(Rose.open(noConfig, { backend: 'cpu' }));
    expect([e.code, e.message]).toEqual(['CONFIG', 'picked/config.json does not exist']);
    const broken = microFiles().map((f) => (f.name === 'tokenizer.json' ? new File(['{"model": 3}'], f.name) : f));
    const t = await roseRejection(
      Rose.open(urlFiles('http://test/m/', { fetch: fakeFetch(new Map(broken.map((f) => [f.name, new Uint8Array()]))).fetch }), {
        backend: 'cpu',
      }),
    );
    expect(t.code).toBe('CONFIG'); // every file empty: config.json is not JSON
    const b = await roseRejection(Rose.open(blobFiles(broken, 'picked'), { backend: 'cpu' }));
    expect([b.code, b.message]).toEqual(['INPUT', 'picked/tokenizer.json: "model" must be an object, got 3']);
  });
});

describe('urlFiles: what HTTP answers mean', () => {
  const bytes = new Uint8Array(100_000).map((_, i) => i % 251);
  const files = new Map([['model.safetensors', bytes]]);

  it('404 is an absent file; so is an HTML page where another file was asked for (a single-page-app fallback)', async () => {
    const html = () => new Response('<!doctype html>', { headers: { 'content-type': 'text/html; charset=utf-8' } });
    const f = urlFiles('http://test/m/', { fetch: fakeFetch(files, (n) => (n === 'tokenizer.json' ? html() : undefined)).fetch });
    expect(await f.bytes('config.json')).toBeUndefined();
    expect(await f.text('tokenizer.json')).toBeUndefined();
    expect(same(await f.bytes('model.safetensors'), bytes)).toBe(true);
  });

  it('a login, a server error and a network failure are CHECKPOINT errors that say what to do', async () => {
    const status = (code: number) => () => new Response('', { status: code, statusText: 'X' });
    const gated = await roseRejection(urlFiles('http://test/m/', { fetch: fakeFetch(files, status(401)).fetch }).bytes('config.json'));
    expect([gated.code, gated.message]).toEqual([
      'CHECKPOINT',
      'http://test/m/config.json needs a login (HTTP 401): the model is gated or private',
    ]);
    const broken = await roseRejection(urlFiles('http://test/m/', { fetch: fakeFetch(files, status(500)).fetch }).bytes('config.json'));
    expect(broken.message).toBe('http://test/m/config.json: HTTP 500 X');
    const offline = await roseRejection(
      urlFiles('http://test/m/', {
        fetch: async () => {
          throw new TypeError('Failed to fetch');
        },
      }).bytes('config.json'),
    );
    expect(offline.message).toBe('cannot fetch http://test/m/config.json: Failed to fetch');
    expect(offline.hint).toMatch(/CORS/);
  });

  it('a streamed body arrives whole, with progress, whether Content-Length is right, too small, too large or absent', async () => {
    const chunked = (length: string | null) => () => {
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          for (let at = 0; at < bytes.length; at += 7000) c.enqueue(bytes.slice(at, at + 7000));
          c.close();
        },
      });
      return new Response(body, { headers: length === null ? {} : { 'content-length': length } });
    };
    for (const length of [String(bytes.length), '5000', '250000', null]) {
      const seen: number[] = [];
      const f = urlFiles('http://test/m/', {
        fetch: fakeFetch(files, chunked(length)).fetch,
        onProgress: (_, loaded) => seen.push(loaded),
      });
      expect(same(await f.bytes('model.safetensors'), bytes), `content-length ${length}`).toBe(true);
      expect(seen.at(-1)).toBe(bytes.length);
    }
  });

  it('a file this engine cannot hold is a LIMIT error', async () => {
    const f = urlFiles('http://test/m/', {
      fetch: async () =>
        ({
          ok: true,
          status: 200,
          headers: new Headers({ 'content-length': String(2 ** 40) }),
          body: null,
          arrayBuffer: async () => {
            throw new RangeError('Array buffer allocation failed');
          },
        }) as unknown as Response,
    });
    const e = await roseRejection(f.bytes('model.safetensors'));
    expect([e.code, e.message]).toEqual([
      'LIMIT',
      'http://test/m/model.safetensors is 1024.0 GiB, more than this browser could hold in memory (Array buffer allocation failed)',
    ]);
  });
});
