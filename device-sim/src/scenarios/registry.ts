import type { ScenarioName } from '../options.js';
import type { Scenario } from '../scenario.js';
import { enrollStorm } from './enroll-storm.js';
import { freeRun } from './free-run.js';
import { reconnectStorm } from './reconnect-storm.js';
import { revokeMidSession } from './revoke-mid-session.js';
import { rotationWave } from './rotation-wave.js';
import { showcase } from './showcase.js';
import { soak } from './soak.js';

export const SCENARIOS: Record<ScenarioName, Scenario> = {
  run: freeRun,
  'enroll-storm': enrollStorm,
  'rotation-wave': rotationWave,
  'revoke-mid-session': revokeMidSession,
  'reconnect-storm': reconnectStorm,
  soak,
  showcase,
};
