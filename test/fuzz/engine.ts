// Runs one fuzz target for a number of executions with fast-check and counts what matters: crashes (an exception the
// target's contract does not allow, an uncaught exception or rejection anywhere in the process) and hangs (one
// execution over HANG_MS). The first failure stops the run; fast-check shrinks it and it is written to a file.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';

export const HANG_MS = 1000;
/** A slow execution is run again this many times; it is a hang only if every attempt is slow (not a busy machine). */
const HANG_CONFIRMATIONS = 2;
export const FUZZ_DIR = path.dirname(fileURLToPath(import.meta.url));

export interface FuzzTarget {
  name: string;
  /** Inputs to draw, built from the seed corpus. */
  inputs(seeds: readonly Uint8Array[]): fc.Arbitrary<Uint8Array>;
  /** Sets up what the target needs (a broker, a database) and returns one execution. */
  setup(): Promise<FuzzSession>;
}

export interface FuzzSession {
  /** One execution; throws (or rejects) only for a crash or a hang. */
  execute(input: Uint8Array): void | Promise<void>;
  /** Checks between executions that the target still answers (a broker's event loop); throws when it does not. */
  healthy?(): Promise<void>;
  stop(): Promise<void>;
}

export class Hang extends Error {
  constructor(readonly ms: number, what = 'execution') {
    super(`${what} took ${ms} ms (limit ${HANG_MS} ms)`);
    this.name = 'Hang';
  }
}

export interface FuzzResult {
  target: string;
  runs: number;
  crashes: number;
  hangs: number;
  seed: number;
  seconds: number;
  execPerSecond: number;
  slowestMs: number;
  /** Executions over the limit once that finished in time when run again (the machine, not the target). */
  slowThenFine: number;
  failure?: { error: string; inputFile: string; shrunkInputHex: string };
}

export function loadCorpus(target: string): Uint8Array[] {
  const dir = path.join(FUZZ_DIR, 'corpus', target);
  return readdirSync(dir).sort().map((file) => readFileSync(path.join(dir, file)));
}

export async function fuzz(target: FuzzTarget, options: { runs: number; seconds?: number; seed?: number; progress?: (runs: number) => void }): Promise<FuzzResult> {
  const seed = options.seed ?? Date.now() % 2 ** 31;
  const session = await target.setup();
  let runs = 0;
  let slowest = 0;
  let slowThenFine = 0;
  let escaped: unknown;
  const onEscape = (error: unknown) => {
    escaped ??= error;
  };
  process.on('uncaughtException', onEscape);
  process.on('unhandledRejection', onEscape);
  const started = performance.now();
  try {
    /** Milliseconds of one execution; a Hang the target detects itself counts as over the limit. */
    const timed = async (input: Uint8Array): Promise<number> => {
      const at = performance.now();
      try {
        await session.execute(input);
      } catch (error) {
        if (!(error instanceof Hang)) throw error;
        return Infinity;
      }
      return performance.now() - at;
    };
    const property = fc.asyncProperty(target.inputs(loadCorpus(target.name)), async (input) => {
      let ms = await timed(input);
      if (ms > HANG_MS) {
        for (let attempt = 0; attempt < HANG_CONFIRMATIONS && ms > HANG_MS; attempt++) ms = await timed(input);
        if (ms > HANG_MS) throw new Hang(Math.round(ms));
        slowThenFine++;
      }
      slowest = Math.max(slowest, ms);
      runs++;
      if (runs % 1000 === 0) {
        options.progress?.(runs);
        await session.healthy?.();
      }
      if (escaped !== undefined) throw escaped instanceof Error ? escaped : new Error(String(escaped));
    });
    const details = await fc.check(property, {
      numRuns: options.runs,
      seed,
      maxSkipsPerRun: 0,
      // A time budget ends the run early without failing it; `runs` says how far it got.
      ...(options.seconds !== undefined ? { interruptAfterTimeLimit: options.seconds * 1000 } : {}),
    });
    // A failed run reports its failure; the target's health after it is beside the point.
    if (!details.failed) await session.healthy?.();
    const seconds = (performance.now() - started) / 1000;
    const result: FuzzResult = {
      target: target.name,
      runs,
      crashes: 0,
      hangs: 0,
      seed,
      seconds: +seconds.toFixed(1),
      execPerSecond: Math.round(runs / seconds),
      slowestMs: +slowest.toFixed(1),
      slowThenFine,
    };
    if (details.failed) {
      const error = details.errorInstance;
      const input = Buffer.from(details.counterexample?.[0] ?? new Uint8Array());
      const dir = path.join(FUZZ_DIR, 'findings');
      mkdirSync(dir, { recursive: true });
      const inputFile = path.join(dir, `${target.name}-${seed}.bin`);
      writeFileSync(inputFile, input);
      if (error instanceof Hang) result.hangs = 1;
      else result.crashes = 1;
      result.failure = { error: error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ''}` : String(error), inputFile, shrunkInputHex: input.toString('hex').slice(0, 4096) };
    }
    return result;
  } finally {
    process.off('uncaughtException', onEscape);
    process.off('unhandledRejection', onEscape);
    await session.stop();
  }
}
