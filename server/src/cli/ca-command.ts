import type { Config } from '../config.js';
import { initPki, pkiPaths } from '../pki-home.js';
import { note } from './output.js';

export async function caInitCommand(config: Readonly<Config>): Promise<void> {
  const created = await initPki(config.home, { serverNames: config.serverNames });
  const p = pkiPaths(config.home);
  note(created ? `created the CA under ${p.caDir}\n  trust anchor for devices: ${p.rootCert}` : `a CA already exists under ${p.caDir}; nothing changed`);
}
