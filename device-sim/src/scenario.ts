// What a scenario gets to work with, and how it says whether its expectations held.
import type { AdminClient } from './admin-client.js';
import type { Fleet } from './fleet.js';
import type { RunOptions } from './options.js';
import type { Rng } from './rng.js';

/**
 * Actions only the server side can take. Each is optional: a scenario that needs a missing one says so in a
 * failed check, or falls back (reconnect-storm drops the sockets from the device side).
 */
export interface ServerHooks {
  /** restart the broker (or the whole stack); resolves once the command finished */
  restartBroker?: () => Promise<void>;
  /** make the broker close every device socket */
  dropBrokerConnections?: () => Promise<void>;
  /** SIGKILL one node of a broker cluster; resolves with the URL it served once it is gone */
  killBrokerNode?: () => Promise<string>;
  /** how the hooks were provided, for the report */
  describe: string;
}

export interface ScenarioContext {
  fleet: Fleet;
  opts: RunOptions;
  admin: AdminClient | undefined;
  hooks: ServerHooks;
  rng: Rng;
  check(name: string, ok: boolean, detail: string): void;
  figure(name: string, value: number | string): void;
  phase(label: string): void;
  log(message: string): void;
  sleep(ms: number): Promise<void>;
}

export interface Scenario {
  name: string;
  description: string;
  run(ctx: ScenarioContext): Promise<void>;
}
