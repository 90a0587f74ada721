// The floor: a bare undici pass-through proxy (no auth, no limits, no parsing), one Pool,
// bytes piped both ways. What any proxy costs before it does anything useful.
import { createServer } from 'node:http';
import { Pool } from 'undici';

const upstream = process.argv[2];
const pool = new Pool(new URL(upstream).origin, { connections: 128, keepAliveTimeout: 60_000 });
const base = new URL(upstream).pathname.replace(/\/$/, '');

const server = createServer(async (req, res) => {
  const parts = [];
  for await (const d of req) parts.push(d);
  try {
    const up = await pool.request({ method: 'POST', path: `${base}/chat/completions`, headers: { 'content-type': 'application/json' }, body: Buffer.concat(parts) });
    res.writeHead(up.statusCode, { 'content-type': up.headers['content-type'] });
    for await (const c of up.body) res.write(c);
    res.end();
  } catch {
    res.writeHead(502).end();
  }
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening on http://127.0.0.1:${server.address().port}\n`));
// Exit on SIGTERM (not by the default signal death) so a --cpu-prof profile gets written.
process.once('SIGTERM', () => server.close(() => process.exit(0)));
