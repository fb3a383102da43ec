// A pino logger that keeps every line it writes (JSON objects), for counting log lines. pino writes to the stream in
// the logging call, so `onLine` runs synchronously with the code that logged: it sees the state at that instant.
import { Writable } from 'node:stream';
import { pino } from 'pino';

export interface LogLine {
  msg: string;
  [key: string]: unknown;
}

export function capturedLogger(onLine?: (line: LogLine) => void) {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const text of chunk.toString().split('\n')) {
        if (!text) continue;
        const line = JSON.parse(text) as LogLine;
        lines.push(line);
        onLine?.(line);
      }
      callback();
    },
  });
  return {
    logger: pino({ level: 'info' }, stream),
    lines,
    count: (text: string) => lines.filter((l) => l.msg.startsWith(text)).length,
    find: (text: string) => lines.find((l) => l.msg.startsWith(text)),
  };
}
