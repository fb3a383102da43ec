import { constants } from 'node:os';

/**
 * A role command stopped by SIGINT/SIGTERM before it was ready: exit 128 + the signal's number (130, 143), as a shell
 * reports a command a signal ended. Recognised by name, not by class: the role commands are loaded from the sources
 * (cli/role-loader.ts), so this module exists twice in a compiled CLI.
 */
export class StartInterrupted extends Error {
  readonly exitCode: number;

  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal} while starting; stopped`);
    this.name = 'StartInterrupted';
    this.exitCode = 128 + constants.signals[signal];
  }
}

export function interruptedExitCode(error: unknown): number | undefined {
  const e = error as { name?: unknown; exitCode?: unknown } | undefined;
  return e?.name === 'StartInterrupted' && typeof e.exitCode === 'number' ? e.exitCode : undefined;
}
