// A pausable TCP proxy in front of the machine's Postgres, for the database-outage tests: "down" refuses and cuts
// connections, so a broker behind it sees Postgres as unreachable without stopping the Postgres other tests use.
import net from 'node:net';

export interface PgProxy {
  port: number;
  url(database: string): string;
  setUp(up: boolean): void;
  close(): Promise<void>;
}

export async function startPgProxy(target = { host: '127.0.0.1', port: 5432 }, initiallyUp = true): Promise<PgProxy> {
  let up = initiallyUp;
  const pairs = new Set<net.Socket>();
  const server = net.createServer((inbound) => {
    if (!up) {
      inbound.destroy();
      return;
    }
    const outbound = net.connect(target.port, target.host);
    pairs.add(inbound);
    pairs.add(outbound);
    const drop = (): void => {
      inbound.destroy();
      outbound.destroy();
      pairs.delete(inbound);
      pairs.delete(outbound);
    };
    inbound.on('error', drop);
    outbound.on('error', drop);
    inbound.on('close', drop);
    outbound.on('close', drop);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    setUp(value) {
      up = value;
      if (!value) for (const s of pairs) s.destroy();
    },
    async close() {
      for (const s of pairs) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
