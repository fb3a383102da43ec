import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// The container, checked without a Docker engine: what its COPY lines need exists and is not excluded by
// .dockerignore, every workspace reaches the image, and CMD runs what `npm start` runs.
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

/** Dockerfile instructions, continuation lines joined. */
function instructions(text: string): Array<{ op: string; args: string }> {
  return text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const [op, ...rest] = line.split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(' ') };
    });
}

/** A .dockerignore pattern as Docker reads it: relative to the context root, `*` within one segment, `**` any depth. */
function ignorePattern(pattern: string): RegExp {
  const source = pattern
    .replace(/^\/+|\/+$/g, '')
    .split('/')
    .map((segment) => (segment === '**' ? '(?:.*)' : segment.replace(/[.+^${}()|[\]]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')))
    .join('/')
    .replace(/\(\?:\.\*\)\//g, '(?:.*/)?');
  // A pattern that names a directory excludes everything below it.
  return new RegExp(`^${source}(?:/.*)?$`);
}

const dockerignore = read('.dockerignore')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line && !line.startsWith('#'));
const excluded = (file: string) => dockerignore.some((pattern) => !pattern.startsWith('!') && ignorePattern(pattern).test(file));
const tracked = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n');

describe('Dockerfile, checked without Docker', () => {
  const steps = instructions(read('Dockerfile'));
  const copies = steps.filter((s) => s.op === 'COPY').map((s) => s.args.split(/\s+/).slice(0, -1));
  const sources = copies.flat().map((source) => source.replace(/\/$/, ''));

  it('the .dockerignore reading matches Docker: top-level names, ** at any depth', () => {
    expect(excluded('node_modules/x/index.js')).toBe(true);
    expect(excluded('device-sim/sensor-0001.key')).toBe(true);
    expect(excluded('tokens.csv')).toBe(true);
    expect(excluded('server/src/cli.ts')).toBe(false);
    expect(ignorePattern('*.key').test('a/b.key')).toBe(false); // why the file says **/*.key
  });

  it('every COPY source exists, is not dockerignored, and carries its tracked files into the image', () => {
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) {
      expect({ source, exists: existsSync(path.join(ROOT, source)), excluded: excluded(source) }).toEqual({ source, exists: true, excluded: false });
      const files = tracked.filter((file) => file === source || file.startsWith(source + '/'));
      expect({ source, files: files.length > 0 }).toEqual({ source, files: true });
      // A tracked file the build needs must not be dropped by a pattern (only secrets and build output are).
      expect({ source, dropped: files.filter(excluded) }).toEqual({ source, dropped: [] });
    }
  });

  it('copies every workspace and the lockfile, so `npm ci` in the image installs what CI installs', () => {
    const { workspaces } = JSON.parse(read('package.json')) as { workspaces: string[] };
    for (const file of ['package.json', 'package-lock.json', ...workspaces.map((w) => `${w}/package.json`)]) {
      const covered = sources.some((source) => file === source || file.startsWith(source + '/'));
      expect({ file, covered }).toEqual({ file, covered: true });
    }
  });

  it('keeps device material and secrets out of the image', () => {
    for (const file of ['sensor-0001.key', 'device-sim/device.key', 'tokens.csv', 'server/x.pem', 'sim-report-demo/report.html', '.enrolld/ca/root.key']) {
      expect({ file, excluded: excluded(file) }).toEqual({ file, excluded: true });
    }
  });

  it('runs as a non-root user, with a HEALTHCHECK that is in the image', () => {
    const user = steps.filter((s) => s.op === 'USER').at(-1);
    expect(user?.args).toBeDefined();
    expect(['root', '0']).not.toContain(user!.args);
    const health = steps.find((s) => s.op === 'HEALTHCHECK');
    const script = /"(server\/scripts\/[^"]+)"/.exec(health?.args ?? '')?.[1];
    expect(script).toBeDefined();
    expect(sources.some((source) => script!.startsWith(source + '/'))).toBe(true);
  });

  it('CMD runs the entry point and command of `npm start`', () => {
    const { scripts } = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    const [loader, ...start] = scripts.start!.split(/\s+/); // tsx server/src/cli.ts up
    const cmd = JSON.parse(steps.filter((s) => s.op === 'CMD').at(-1)!.args) as string[];
    expect(loader).toBe('tsx');
    expect(cmd.slice(0, 3)).toEqual(['node', '--import', 'tsx']);
    expect(cmd.slice(3)).toEqual(start);
  });

  it('docker-compose has a healthcheck for every service, and enrolld waits for healthy dependencies', () => {
    const compose = read('docker-compose.yml');
    const services = [...compose.matchAll(/^ {2}([a-z][\w-]*):\n/gm)].map((m) => m[1]!);
    expect(services).toEqual(['postgres', 'redis', 'enrolld', 'api-1', 'api-2', 'broker-1', 'broker-2', 'haproxy']);
    for (const service of services) {
      const start = compose.indexOf(`  ${service}:\n`);
      const next = services.map((s) => compose.indexOf(`  ${s}:\n`)).filter((i) => i > start).concat(compose.indexOf('\nvolumes:'))[0]!;
      expect({ service, healthcheck: compose.slice(start, next).includes('    healthcheck:') }).toEqual({ service, healthcheck: true });
    }
    expect(compose).toContain('postgres: { condition: service_healthy }');
    expect(compose).toContain('redis: { condition: service_healthy }');
  });

  it('the cluster profile: 2 APIs and 2 brokers of one Redis cluster behind HAProxy, MQTT in TCP passthrough, each backend a compose service', () => {
    const compose = read('docker-compose.yml');
    const block = (service: string) => {
      const start = compose.indexOf(`  ${service}:\n`);
      const rest = compose.slice(start + 1);
      const end = rest.search(/\n {2}[a-z][\w-]*:\n|\nvolumes:/);
      return rest.slice(0, end);
    };
    for (const s of ['api-1', 'api-2', 'broker-1', 'broker-2', 'haproxy']) expect({ s, profile: block(s).includes('profiles: [cluster]') }).toEqual({ s, profile: true });
    for (const s of ['api-1', 'api-2']) expect(block(s)).toContain('"api"]');
    for (const s of ['broker-1', 'broker-2']) expect(block(s)).toContain('"broker"]');
    expect(block('api-1')).toMatch(/BROKER_CLUSTER: redis/); // the shared &cluster-env every cluster service uses
    for (const s of ['api-2', 'broker-1', 'broker-2']) expect(block(s)).toContain('environment: *cluster-env');
    // HAProxy starts once every backend is healthy, and only it publishes the ports in this profile
    for (const s of ['broker-1', 'broker-2', 'api-1', 'api-2']) expect(block('haproxy')).toContain(`${s}: { condition: service_healthy }`);
    for (const s of ['api-1', 'api-2', 'broker-1', 'broker-2']) expect(block(s)).not.toContain('ports:');
    // the single-process `enrolld` service publishes the same host ports and has no profile, so it always starts with
    // `docker compose up`: the cluster is brought up by naming haproxy (its dependencies follow), as the comment says
    expect(compose).toContain('docker compose --profile cluster up -d --build haproxy');
    const cfg = read('deploy/haproxy.cfg');
    // a section runs from its header line to the next blank line
    const section = (name: string) => {
      const start = cfg.indexOf(`\n${name}\n`);
      expect({ name, found: start >= 0 }).toEqual({ name, found: true });
      const end = cfg.indexOf('\n\n', start + 1);
      return cfg.slice(start, end < 0 ? undefined : end);
    };
    // mTLS must reach the broker: TCP mode, no `ssl` on the bind or the servers
    expect(section('frontend mqtts')).toMatch(/mode tcp/);
    expect(section('frontend mqtts')).not.toMatch(/\bssl\b/);
    expect(section('backend brokers')).toMatch(/mode tcp/);
    expect(section('backend brokers')).not.toMatch(/\bssl\b/);
    // each address is `"${LB_…-<compose host>:<port>}"`: the compose service name is the default
    const servers = (name: string) => [...section(name).matchAll(/^\s*server (\S+) "\$\{LB_[A-Z0-9_]+-([^:"]+):(\d+)\}"/gm)].map((m) => [m[1], m[2], m[3]]);
    expect(servers('backend brokers')).toEqual([['broker-1', 'broker-1', '8883'], ['broker-2', 'broker-2', '8883']]);
    expect(servers('backend apis')).toEqual([['api-1', 'api-1', '8443'], ['api-2', 'api-2', '8443']]);
    expect(section('backend apis')).toMatch(/option httpchk GET \/readyz/);
    // the server certificate names what devices and HAProxy's checks dial
    expect(block('api-1')).toMatch(/SERVER_NAMES: haproxy,api-1,api-2/);
  });
});
