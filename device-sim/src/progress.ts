// Live progress on stderr: a redrawn line on a terminal, a plain line every few seconds otherwise (CI logs).
import type { Fleet } from './fleet.js';

export interface Progress {
  stop(): void;
}

function bar(fraction: number, width: number): string {
  const filled = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return '█'.repeat(filled) + '░'.repeat(width - filled);
}

export function startProgress(fleet: Fleet, label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  const tty = stream.isTTY === true;
  const render = (): string => {
    const c = fleet.counts();
    const errors = [...fleet.recorder.errors.values()].reduce((a, b) => a + b, 0);
    const t = fleet.recorder.elapsed().toFixed(1).padStart(6);
    // with several brokers, where the connected devices are: `:8883 500 :8884 498`
    const by = fleet.opts.brokerUrls.length > 1 ? fleet.onlineByBroker() : undefined;
    const nodes = by ? `  (${fleet.opts.brokerUrls.map((u) => `:${u.port} ${by.get(u.href) ?? 0}`).join(' ')})` : '';
    return `${label} ${t}s ${bar(c.online / Math.max(1, c.total), 24)} enrolled ${c.enrolled}/${c.total}  connected ${c.online}${nodes}  rotated ${c.rotated}  revoked ${c.revoked}  errors ${errors}`;
  };
  let lastPlain = 0;
  const timer = setInterval(() => {
    if (tty) {
      stream.write(`\r\x1b[2K${render()}`);
    } else if (performance.now() - lastPlain >= 5_000) {
      lastPlain = performance.now();
      stream.write(`${render()}\n`);
    }
  }, 250);
  return {
    stop() {
      clearInterval(timer);
      stream.write(tty ? `\r\x1b[2K${render()}\n` : `${render()}\n`);
    },
  };
}
