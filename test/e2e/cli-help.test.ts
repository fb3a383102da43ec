import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ENROLLD_BIN, REPO_ROOT } from '../support/processes.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The help sections of a command: "Options:" → its option blocks (continuation lines joined), "Commands:" → names. */
function sections(help: string): { options: string[]; commands: string[] } {
  const options: string[] = [];
  const commands: string[] = [];
  let section = '';
  for (const line of help.split('\n')) {
    if (/^\S.*:$/.test(line)) section = line;
    else if (section === 'Options:' && /^ {2}-/.test(line)) options.push(line.trim());
    else if (section === 'Options:' && /^ {3,}\S/.test(line) && options.length) options[options.length - 1] += ' ' + line.trim();
    else if (section === 'Commands:' && /^ {2}\S/.test(line)) commands.push(line.trim().split(/\s+/)[0]!);
  }
  return { options, commands };
}

describe('every enrolld command and subcommand answers --help with help and nothing else', () => {
  let work: string;
  let home: string;
  let api: net.Server;
  let apiUrl: string;
  let connections = 0;

  /** Runs the compiled CLI in an empty directory, with ENROLLD_HOME not yet created and ENROLLD_URL on a listener that counts. */
  function enrolld(args: string[], env: Record<string, string> = {}): Promise<Run> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [ENROLLD_BIN, ...args],
        { cwd: work, env: { PATH: process.env.PATH ?? '', ENROLLD_HOME: home, ENROLLD_URL: apiUrl, HTTPS_PORT: '1', MQTTS_PORT: '1', ...env } },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
      );
    });
  }

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'enrolld-cli-help-'));
    home = path.join(work, 'home-never-created');
    api = net.createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    apiUrl = `https://127.0.0.1:${(api.address() as net.AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => api.close(resolve));
    await rm(work, { recursive: true, force: true });
  });

  it('walks the whole command tree: help on stdout, exit 0, a description, each option with its default, an example; no side effect', async () => {
    const seen: string[] = [];
    const queue: string[][] = [[]];
    while (queue.length) {
      const command = queue.shift()!;
      const run = await enrolld([...command, '--help']);
      const name = ['enrolld', ...command].join(' ');
      seen.push(name);
      expect({ name, code: run.code, stderr: run.stderr }).toEqual({ name, code: 0, stderr: '' });
      expect(run.stdout.startsWith(`Usage: ${name} `)).toBe(true);
      expect(run.stdout.split('\n')[2]!.trim().length).toBeGreaterThan(10); // the description
      expect(run.stdout).toMatch(/\nExamples:\n {2}\$ (\S+=\S+ )*enrolld /);
      const { options, commands } = sections(run.stdout);
      for (const option of options.filter((o) => !/^-h, --help|^-V, --version/.test(o))) expect({ name, option, hasDefault: /default:/.test(option) }).toEqual({ name, option, hasDefault: true });
      for (const sub of commands.filter((c) => c !== 'help')) queue.push([...command, sub]);
    }
    // The tree the walk found: the server roles, the CA, and the admin commands (a new command joins this list).
    expect(seen).toEqual(expect.arrayContaining([
      'enrolld up', 'enrolld api', 'enrolld broker', 'enrolld worker', 'enrolld ca init', 'enrolld token create', 'enrolld devices list', 'enrolld devices show', 'enrolld revoke',
      'enrolld env create', 'enrolld env list', 'enrolld env show', 'enrolld env delete',
    ]));
    // Nothing was created, nothing was called: no home, no file in the working directory, no connection to the API.
    expect(await readdir(work)).toEqual([]);
    expect(connections).toBe(0);
    // One process per command, one after another: over 40 of them, about a second each on a busy 2-core machine.
  }, 180_000);

  it('`enrolld [group] help <command>` and `-h` print the same help as --help', async () => {
    expect(await enrolld(['help', 'token'])).toEqual(await enrolld(['token', '--help']));
    const long = await enrolld(['ca', 'init', '--help']);
    expect(await enrolld(['ca', 'help', 'init'])).toEqual(long);
    expect(await enrolld(['ca', 'init', '-h'])).toEqual(long);
  });

  it('--version prints the version of the package', async () => {
    const { version } = JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(await enrolld(['--version'])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('an unknown option exits 2 and lists the valid ones; so does an unknown command', async () => {
    const option = await enrolld(['token', 'create', '--device', 'sensor-0001', '--tll', '15m']);
    expect(option.code).toBe(2);
    expect(option.stderr).toContain("unknown option '--tll'");
    expect(option.stderr).toContain('(Did you mean --ttl?)');
    for (const valid of ['--device', '--prefix', '--count', '--ttl']) expect(option.stderr).toContain(valid);
    const command = await enrolld(['tokens']);
    expect(command.code).toBe(2);
    expect(command.stderr).toContain("unknown command 'tokens'");
    expect(command.stderr).toContain('(Did you mean token?)');
    const bare = await enrolld([]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('Usage: enrolld');
    expect(connections).toBe(0);
  });

  it('`enrolld completion` gives bash completion of commands and options, made from the same command tree', async () => {
    const script = await enrolld(['completion']);
    expect(script.code).toBe(0);
    /** What bash would offer after `enrolld <words>` with the cursor on the last word. */
    const complete = (words: string[]): Promise<string> =>
      new Promise((resolve, reject) => {
        const line = ['enrolld', ...words].map((w) => `'${w}'`).join(' ');
        const bash = `${script.stdout}\nCOMP_WORDS=(${line}); COMP_CWORD=${words.length}; _enrolld; echo "\${COMPREPLY[*]}"`;
        execFile('bash', ['-c', bash], (error, stdout) => (error ? reject(error) : resolve(stdout.trim())));
      });
    expect(await complete(['to'])).toBe('token');
    expect(await complete(['token', ''])).toBe('create show --help');
    expect(await complete(['token', 'create', '--device', 'sensor-0001', '--af'])).toBe('--after-compromise');
    expect(await complete(['devices', 'list', '--l'])).toBe('--limit');
    expect(await complete(['ca', 'i'])).toBe('init');
  });

  it('usage mistakes exit 2 with their reason before any request', async () => {
    const cases: Array<[string[], string]> = [
      [['revoke'], 'give a device id (enrolld revoke sensor-0001) or --serial HEX'],
      [['revoke', 'sensor-0001', '--serial', '0a'], 'give a device id or --serial, not both'],
      [['token', 'create', '--device', 'sensor-0001', '--ttl', '15'], '--ttl "15" has no unit: write 15s, 15m, 15h or 15d'],
      [['token', 'create', '--device', 'sensor-0001', '--group', 'Line/7'], '"Line/7" is not a valid group'],
      [['token', 'create', '--service', 'ingest', '--group', 'line-7'], '--group is for device tokens; a service has no group'],
      [['devices', 'list', '--limit', '0'], "option '--limit <n>' argument '0' is invalid"],
    ];
    for (const [args, message] of cases) {
      const run = await enrolld(args);
      expect({ args, code: run.code, said: run.stderr.includes(message) }).toEqual({ args, code: 2, said: true });
    }
    expect(connections).toBe(0);
  });
});
