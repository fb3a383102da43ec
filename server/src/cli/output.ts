import Table from 'cli-table3';
import { colorsWanted } from '../config.js';

/** Progress and status go to stderr so stdout stays clean for scripts (`token create … > tokens.csv`). */
export function note(message: string): void {
  process.stderr.write(message + '\n');
}

/** A spinner with elapsed time on stderr, only when stderr is a terminal. */
export function startProgress(label: string): { stop(final?: string): void } {
  if (!process.stderr.isTTY) {
    note(`${label}…`);
    return { stop: (final) => final && note(final) };
  }
  const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
  const started = Date.now();
  let i = 0;
  const timer = setInterval(() => {
    process.stderr.write(`\r${frames[i++ % frames.length]} ${label} ${((Date.now() - started) / 1000).toFixed(1)}s`);
  }, 100);
  return {
    stop(final) {
      clearInterval(timer);
      process.stderr.write('\r\x1b[K');
      if (final) note(final);
    },
  };
}

export function table(head: string[], rows: Array<Array<string | number | null>>): string {
  // Plain text for pipes and NO_COLOR; a coloured header only on a terminal.
  const t = new Table({ head, style: colorsWanted(process.stdout) ? { head: ['cyan'] } : { head: [], border: [] } });
  for (const row of rows) t.push(row.map((c) => (c === null ? '—' : String(c))));
  return t.toString();
}
