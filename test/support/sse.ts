// A real HTTP client of a server-sent events stream (HTML Living Standard §9.2): it parses `event:` and `data:` lines
// as they arrive and keeps every event read, for tests that wait on them.
import https from 'node:https';
import type { IncomingMessage } from 'node:http';

export interface SseEvent {
  event: string;
  data: any;
}

export interface EventStream {
  events: SseEvent[];
  close(): void;
}

/** Opens the stream and resolves once the server answered 200 with text/event-stream. */
export function openEventStream(url: string, caPem: string, headers: Record<string, string>): Promise<EventStream> {
  return new Promise((resolve, reject) => {
    const events: SseEvent[] = [];
    const req = https.request(url, { headers: { accept: 'text/event-stream', ...headers }, ca: caPem, agent: false }, (res: IncomingMessage) => {
      if (res.statusCode !== 200 || !String(res.headers['content-type']).startsWith('text/event-stream')) {
        res.resume();
        reject(new Error(`event stream answered ${res.statusCode} ${res.headers['content-type']}`));
        return;
      }
      res.setEncoding('utf8');
      let buffered = '';
      res.on('data', (chunk: string) => {
        buffered += chunk;
        let end: number;
        while ((end = buffered.indexOf('\n\n')) >= 0) {
          const block = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          let event = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data.push(line.slice(6));
          }
          if (data.length > 0) events.push({ event, data: JSON.parse(data.join('\n')) });
        }
      });
      res.on('error', () => undefined);
      resolve({ events, close: () => req.destroy() });
    });
    req.on('error', reject);
    req.end();
  });
}
