// Serves the web app (ui/: plain HTML, CSS and ES modules, no framework)
// from konami itself: / and /ui/*.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Context, Next } from 'koa';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** ui/ beside lib/ (running the sources) or beside dist/ (running the build). */
function uiDir(): string {
  for (const up of ['../../ui', '../../../ui']) {
    const dir = fileURLToPath(new URL(up, import.meta.url));
    if (existsSync(join(dir, 'index.html'))) return dir;
  }
  throw new Error('the web app (ui/) is missing');
}

export function serveUi() {
  const dir = uiDir();
  return async (ctx: Context, next: Next): Promise<void> => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    let file: string | undefined;
    if (ctx.path === '/' || ctx.path === '/ui' || ctx.path === '/ui/') file = 'index.html';
    else if (ctx.path === '/favicon.ico') file = 'favicon.svg';
    else if (ctx.path.startsWith('/ui/')) file = normalize(ctx.path.slice('/ui/'.length));
    if (!file || file.startsWith('..') || !TYPES[extname(file)]) return next();
    let body: Buffer;
    try {
      body = await readFile(join(dir, file));
    } catch {
      return next();
    }
    ctx.type = TYPES[extname(file)]!;
    ctx.set('Cache-Control', 'no-cache');
    ctx.body = body;
  };
}
