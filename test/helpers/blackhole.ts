// A TCP relay that can turn into a black hole: the way a database behind a network partition,
// a dead host or a dropped firewall state looks to its clients. Connections stay open, bytes
// go nowhere, nothing answers and nothing is refused — unlike a stopped server, which resets
// connections and fails fast.
import net from 'node:net';

export interface Blackhole {
  /** The relay's port on 127.0.0.1. */
  port: number;
  /** `url` with its host and port replaced by the relay's. */
  via(url: string): string;
  /** From now on every byte, either way, is dropped; new connections are accepted and ignored. */
  swallow(): void;
  /**
   * New connections are relayed again. Connections swallowed before stay swallowed forever, as
   * connections whose state a partition lost: their clients must give up on them themselves.
   */
  heal(): void;
  /** Connections that are open and relayed right now. */
  live(): number;
  close(): Promise<void>;
}

export async function blackhole(target: { host: string; port: number }): Promise<Blackhole> {
  let swallowing = false;
  const pairs = new Set<{ client: net.Socket; server: net.Socket | null; lost: boolean }>();
  const server = net.createServer((client) => {
    const pair: { client: net.Socket; server: net.Socket | null; lost: boolean } = { client, server: null, lost: swallowing };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      pair.server?.destroy();
    };
    client.on('error', end);
    client.on('close', () => {
      // A lost connection's client closing reaches nobody, as on a real partition.
      if (!pair.lost) end();
      else pairs.delete(pair);
    });
    client.on('data', (b) => {
      if (!pair.lost) pair.server?.write(b);
    });
    if (pair.lost) return;
    const up = net.connect(target.port, target.host);
    pair.server = up;
    client.pause();
    up.on('connect', () => client.resume());
    up.on('data', (b) => {
      if (!pair.lost) client.write(b);
    });
    up.on('error', () => {
      if (!pair.lost) end();
    });
    up.on('close', () => {
      if (!pair.lost) end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    via(url) {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    swallow() {
      swallowing = true;
      for (const p of pairs) p.lost = true;
    },
    heal() {
      swallowing = false;
    },
    live: () => [...pairs].filter((p) => !p.lost).length,
    async close() {
      for (const p of pairs) {
        p.client.destroy();
        p.server?.destroy();
      }
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
