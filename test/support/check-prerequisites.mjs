// Runs before jest (npm test): every program the tests start as a child process, and the services they connect to,
// must be there. Without this a missing tool surfaces as exit 127 deep inside one test. One line per missing thing,
// with the Debian package that provides it; exit 1 if anything is missing. Plain node, no dependencies.
import { accessSync, constants } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** Programs the tests spawn (test/support/*.ts, test/e2e/*.ts) → the Debian package that ships each. */
const tools = [
  ['bash', 'bash'],
  ['stat', 'coreutils'],
  ['stdbuf', 'coreutils'],
  ['script', 'bsdutils'],
  ['openssl', 'openssl'],
  ['curl', 'curl'],
  ['jq', 'jq'],
  ['pki', 'strongswan-pki'],
  ['mosquitto', 'mosquitto'],
  ['mosquitto_sub', 'mosquitto-clients'],
  ['mosquitto_pub', 'mosquitto-clients'],
  ['promtool', 'prometheus'],
  ['chromium', 'chromium'],
  ['mosquitto_rr', 'mosquitto-clients'],
  ['haproxy', 'haproxy'],
];

function onPath(program) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    try {
      accessSync(path.join(dir, program), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

/** Opens a TCP connection, optionally sends `probe`, and resolves with the first bytes answered ('' without a probe). */
function reach(host, port, probe) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(2000, () => socket.destroy(new Error('no answer within 2 s')));
    socket.once('error', reject);
    socket.once('connect', () => {
      if (!probe) {
        socket.end();
        resolve('');
        return;
      }
      socket.write(probe);
      socket.once('data', (data) => {
        socket.end();
        resolve(data.toString('latin1'));
      });
    });
  });
}

const problems = [];
for (const [program, pkg] of tools) {
  if (!onPath(program)) problems.push(`missing program '${program}': apt-get install ${pkg}`);
}

// Same defaults as test/support/pg.ts and the Redis-driven tests.
const pgUrl = new URL(process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
const pgHost = pgUrl.hostname || '127.0.0.1';
const pgPort = Number(pgUrl.port || 5432);
try {
  await reach(pgHost, pgPort);
} catch (error) {
  problems.push(`PostgreSQL not reachable at ${pgHost}:${pgPort} (${error.code ?? error.message}): start it (apt-get install postgresql) or set TEST_DATABASE_URL`);
}

const redisUrl = new URL(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');
const redisHost = redisUrl.hostname || '127.0.0.1';
const redisPort = Number(redisUrl.port || 6379);
try {
  // Redis protocol inline command: a live server answers "+PONG" (or "-NOAUTH" when a password is required).
  const answer = await reach(redisHost, redisPort, 'PING\r\n');
  if (!answer.startsWith('+PONG')) problems.push(`Redis at ${redisHost}:${redisPort} did not answer PING with PONG: got ${JSON.stringify(answer.trim())}`);
} catch (error) {
  problems.push(`Redis not reachable at ${redisHost}:${redisPort} (${error.code ?? error.message}): start it (apt-get install redis-server) or set TEST_REDIS_URL`);
}

if (problems.length > 0) {
  for (const line of problems) process.stderr.write(`prerequisite: ${line}\n`);
  process.exit(1);
}
