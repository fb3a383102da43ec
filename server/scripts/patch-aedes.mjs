// Applies enrolld's one change to aedes (docs/architecture.md §6, "What a CONNECT costs"). Runs as the first part of
// `npm ci`'s prepare step and before `npm test`; it is idempotent.
//
// The change: aedes replays a session's outgoing queue at every CONNECT (lib/handlers/connect.js `emptyQueue`) through a
// stream pipeline, a clean session's too, where it only drops what an earlier session left queued (MQTT-3.1.2-6).
// The pipeline costs a Transform, an AbortController and, when it ends, a DOMException with a stack trace: about a
// tenth of the broker's JavaScript time per CONNECT. The patched emptyQueue asks the persistence first: one that offers
// `outgoingQueued(client)` and answers false lets a clean session skip the replay. A persistence without the method
// (aedes-persistence-redis, stock memory) takes aedes' own path, unchanged.
//
// The text replaced is matched exactly for AEDES_VERSION below. Another installed version, or a file that holds neither
// the original nor the patched text, fails the install with what to do, rather than running an unpatched broker.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Moves with AEDES_VERSION_RELIED_ON (server/src/mqtt/aedes-internals.ts), which pins the internals the broker reads.
const AEDES_VERSION = '1.2.0';
const FILE = 'lib/handlers/connect.js';
const PATCH_MARK = 'enrolld patch: outgoingQueued';

const ORIGINAL = `function emptyQueue (arg, done) {
  const client = this.client
  const persistence = client.broker.persistence
  const outgoing = persistence.outgoingStream(client)
`;

const PATCHED = `function emptyQueue (arg, done) {
  const client = this.client
  const persistence = client.broker.persistence
  // ${PATCH_MARK}. A clean session delivers nothing of an earlier one [MQTT-3.1.2-6]; the
  // pipeline below only drops what such a session left queued. When the persistence knows nothing is queued, skip it.
  if (client.clean && typeof persistence.outgoingQueued === 'function' && !persistence.outgoingQueued(client)) {
    client.resume()
    done()
    return
  }
  const outgoing = persistence.outgoingStream(client)
`;

const root = fileURLToPath(new URL('../..', import.meta.url));
// npm hoists aedes to the root node_modules; a workspace keeps its own copy only when versions conflict.
const copies = ['node_modules/aedes', 'server/node_modules/aedes'].map((dir) => path.join(root, dir)).filter((dir) => existsSync(dir));

function fail(message) {
  process.stderr.write(`patch-aedes: ${message}\n`);
  process.exit(1);
}

if (copies.length === 0) fail('aedes is not installed: run npm ci first');
for (const dir of copies) {
  const { version } = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
  if (version !== AEDES_VERSION) {
    fail(`${dir} is aedes ${version}; this patch was written for ${AEDES_VERSION}. Check whether the new version still replays the queue ` +
      `through a pipeline for clean sessions, then update or drop the patch in server/scripts/patch-aedes.mjs.`);
  }
  const file = path.join(dir, FILE);
  const source = readFileSync(file, 'utf8');
  if (source.includes(PATCHED)) continue;
  if (source.split(ORIGINAL).length !== 2) fail(`${file} does not hold the text this patch replaces (a modified copy of aedes?): reinstall it with npm ci`);
  writeFileSync(file, source.replace(ORIGINAL, PATCHED));
}
