// Applies enrolld's changes to two dependencies (docs/architecture.md §6, "What a CONNECT costs"). Runs as the first part
// of `npm ci`'s prepare step and before `npm test`; it is idempotent. Each change removes work the broker does on every
// CONNECT and changes nothing a client can observe:
//
// - aedes `emptyQueue` (lib/handlers/connect.js): aedes replays a session's outgoing queue at every CONNECT through a
//   stream pipeline, a clean session's too, where it only drops what an earlier session left queued (MQTT-3.1.2-6). The
//   pipeline costs a Transform, an AbortController and, when it ends, a DOMException with a stack trace. The patched
//   emptyQueue asks the persistence first: one that offers `outgoingQueued(client)` and answers false lets a clean session
//   skip the replay. A persistence without the method (aedes-persistence-redis, stock memory) takes aedes' own path.
// - aedes `Client` (lib/client.js), two changes to how a connection ends:
//   - it watched its socket with `stream.finished`, which on a socket closed before both its sides ended (every client
//     that sends DISCONNECT: the broker destroys the socket) builds an ERR_STREAM_PREMATURE_CLOSE error with a stack
//     trace that `close` ignores. The patched client closes on the socket's 'close' event instead; errors and 'end'
//     already reach `close` through their own listeners, and a socket already destroyed is closed on the next tick, as
//     `finished` would.
//   - `close` built an Error for the callbacks waiting for 'drain' on every close; the patched one builds it only when
//     one waits.
// - aedes `write` (lib/write.js): mqtt-packet's writeToStream writes a CONNACK as four corked writes (header, length,
//   flags, return code); the patched write sends its four bytes in one. aedes sends every CONNACK in the MQTT 3.1.1
//   form, which this reproduces byte for byte (test/unit/aedes-internals.test.ts compares the two).
// - mqtt-packet's parser (parser.js) kept its bytes in a `bl` BufferListStream, a Duplex stream it never reads or writes
//   as a stream; it uses only the BufferList methods (append, consume, read*, slice, toString, length). The patched
//   parser takes bl's plain BufferList, which saves building a stream per connection.
//
// The text replaced is matched exactly for the version named with it. Another installed version, or a file that holds
// neither the original nor the patched text, fails the install with what to do, rather than running unpatched.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// aedes moves with AEDES_VERSION_RELIED_ON (server/src/mqtt/aedes-internals.ts), which pins the internals the broker reads.
const PATCHES = [
  {
    pkg: 'aedes',
    version: '1.2.0',
    file: 'lib/handlers/connect.js',
    mark: 'enrolld patch: outgoingQueued',
    original: `function emptyQueue (arg, done) {
  const client = this.client
  const persistence = client.broker.persistence
  const outgoing = persistence.outgoingStream(client)
`,
    patched: `function emptyQueue (arg, done) {
  const client = this.client
  const persistence = client.broker.persistence
  // enrolld patch: outgoingQueued. A clean session delivers nothing of an earlier one [MQTT-3.1.2-6]; the
  // pipeline below only drops what such a session left queued. When the persistence knows nothing is queued, skip it.
  if (client.clean && typeof persistence.outgoingQueued === 'function' && !persistence.outgoingQueued(client)) {
    client.resume()
    done()
    return
  }
  const outgoing = persistence.outgoingStream(client)
`,
  },
  {
    pkg: 'aedes',
    version: '1.2.0',
    file: 'lib/client.js',
    mark: 'enrolld patch: close on the socket',
    original: `    this._eos = finished(this.conn, this.close.bind(this))
`,
    patched: `    // enrolld patch: close on the socket's 'close'. stream.finished builds a premature-close error with a stack
    // trace for every socket destroyed before both its sides ended; errors and 'end' reach close() above.
    const closeOnSocketClose = () => this.close()
    conn.once('close', closeOnSocketClose)
    if (conn.destroyed) process.nextTick(closeOnSocketClose)
    this._eos = () => conn.removeListener('close', closeOnSocketClose)
`,
  },
  {
    pkg: 'aedes',
    version: '1.2.0',
    file: 'lib/client.js',
    mark: 'enrolld patch: drain error when one waits',
    original: `    const error = new Error('connection closed')
    const pending = this._pendingDrains
    this._pendingDrains = []
    for (let i = 0; i < pending.length; i++) {
      setImmediate(pending[i], error, this)
    }
`,
    patched: `    // enrolld patch: drain error when one waits (an Error captures a stack trace; most closes have none waiting)
    const pending = this._pendingDrains
    this._pendingDrains = []
    const error = pending.length > 0 ? new Error('connection closed') : null
    for (let i = 0; i < pending.length; i++) {
      setImmediate(pending[i], error, this)
    }
`,
  },
  {
    pkg: 'aedes',
    version: '1.2.0',
    file: 'lib/write.js',
    mark: 'enrolld patch: CONNACK in one write',
    original: `      const result = mqtt.writeToStream(packet, client.conn)
`,
    patched: `      // enrolld patch: CONNACK in one write. writeToStream writes its 4 bytes as 4 corked writes; aedes always sends the
      // MQTT 3.1.1 form (no properties): fixed header 0x20, remaining length 2, session present flag, return code (§3.2).
      const result = packet.cmd === 'connack' && typeof packet.returnCode === 'number'
        ? client.conn.write(Buffer.from([0x20, 0x02, packet.sessionPresent ? 1 : 0, packet.returnCode]))
        : mqtt.writeToStream(packet, client.conn)
`,
  },
  {
    pkg: 'mqtt-packet',
    version: '9.0.2',
    file: 'parser.js',
    mark: 'enrolld patch: plain BufferList',
    original: `    this._list = bl()
`,
    patched: `    this._list = new BufferList() // enrolld patch: plain BufferList (the parser never uses it as a stream)
`,
  },
  {
    pkg: 'mqtt-packet',
    version: '9.0.2',
    file: 'parser.js',
    mark: 'enrolld patch: BufferList import',
    original: `const bl = require('bl')
`,
    patched: `const { BufferList } = require('bl') // enrolld patch: BufferList import
`,
  },
];

const root = fileURLToPath(new URL('../..', import.meta.url));

function fail(message) {
  process.stderr.write(`patch-dependencies: ${message}\n`);
  process.exit(1);
}

for (const patch of PATCHES) {
  // npm hoists a package to the root node_modules; a workspace keeps its own copy only when versions conflict.
  const copies = [`node_modules/${patch.pkg}`, `server/node_modules/${patch.pkg}`].map((dir) => path.join(root, dir)).filter((dir) => existsSync(dir));
  if (copies.length === 0) fail(`${patch.pkg} is not installed: run npm ci first`);
  for (const dir of copies) {
    const { version } = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
    if (version !== patch.version) {
      fail(`${dir} is ${patch.pkg} ${version}; the patch "${patch.mark}" was written for ${patch.version}. Check whether the new version ` +
        `still needs it (see the comment at the top of server/scripts/patch-dependencies.mjs), then update or drop it there.`);
    }
    const file = path.join(dir, patch.file);
    const source = readFileSync(file, 'utf8');
    if (source.includes(patch.patched)) continue;
    if (source.split(patch.original).length !== 2) {
      fail(`${file} holds neither the text the patch "${patch.mark}" replaces nor its result (a modified copy?): reinstall it with npm ci`);
    }
    writeFileSync(file, source.replace(patch.original, patch.patched));
  }
}
