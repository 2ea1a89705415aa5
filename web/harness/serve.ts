/**
 * A static file server for the web page, bound to 127.0.0.1 only: GET and HEAD of files under a few
 * mounted folders, nothing else. No directory listings, no paths outside a mount (`..`, encoded or
 * not, and symlinks are resolved and checked), no caching headers beyond no-store.
 */
import { createReadStream, realpathSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.safetensors': 'application/octet-stream',
};

export interface StaticServer {
  readonly server: Server;
  /** http://127.0.0.1:PORT/ */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves `mounts` (URL prefix ending in '/' → folder) on 127.0.0.1:`port` (0 = any free port).
 * The longest matching prefix wins; '/' serves index.html for a bare folder URL.
 */
export async function serveStatic(mounts: Record<string, string>, port = 0): Promise<StaticServer> {
  const table = Object.entries(mounts)
    .map(([prefix, dir]) => [prefix, realpathSync(resolve(dir))] as const)
    .sort((a, b) => b[0].length - a[0].length);

  const find = (urlPath: string): string | undefined => {
    for (const [prefix, root] of table) {
      if (!urlPath.startsWith(prefix)) continue;
      let rel = urlPath.slice(prefix.length);
      if (rel === '' || rel.endsWith('/')) rel += 'index.html';
      if (rel.split('/').some((p) => p === '..' || p === '.' || p.includes('\0') || p.includes('\\'))) return undefined;
      let file: string;
      try {
        file = realpathSync(join(root, rel));
      } catch {
        return undefined;
      }
      if (!(file === root || file.startsWith(root + sep))) return undefined; // a symlink out of the mount
      try {
        return statSync(file).isFile() ? file : undefined;
      } catch {
        return undefined;
      }
    }
    return undefined;
  };

  const server = createServer((req, res) => {
    const fail = (code: number, text: string) => {
      res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end(`${text}\n`);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405, 'method not allowed');
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
    } catch {
      return fail(400, 'bad URL');
    }
    const file = find(path);
    if (!file) return fail(404, `not found: ${path}`);
    const size = statSync(file).size;
    res.writeHead(200, {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'content-length': size,
      'cache-control': 'no-store',
    });
    if (req.method === 'HEAD') return res.end();
    createReadStream(file)
      .on('error', () => res.destroy())
      .pipe(res);
  });

  await new Promise<void>((ok, bad) => {
    server.once('error', bad);
    server.listen(port, '127.0.0.1', () => ok());
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('server has no TCP address');
  return {
    server,
    url: `http://127.0.0.1:${addr.port}/`,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
