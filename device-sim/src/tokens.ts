// Where a fleet's bootstrap tokens come from: a CSV (`enrolld token create --prefix … --count … > tokens.csv`)
// or the admin API. Tokens are secrets: they are held in memory only and never printed.
import { readFile } from 'node:fs/promises';
import { isValidDeviceId } from '@enrolld/protocol';

export interface DeviceToken {
  deviceId: string;
  token: string;
}

/** `deviceId,token,expiresAt` with a header line; quoted cells allowed (RFC 4180). */
export function parseTokenCsv(text: string): DeviceToken[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const header = lines.shift()?.split(',').map((h) => h.trim().replace(/^"|"$/g, ''));
  const idCol = header?.indexOf('deviceId') ?? -1;
  const tokenCol = header?.indexOf('token') ?? -1;
  if (idCol < 0 || tokenCol < 0) throw new Error('token CSV must start with a header line naming deviceId and token');
  return lines.map((line, i) => {
    const cells = splitCsvLine(line);
    const deviceId = cells[idCol] ?? '';
    const token = cells[tokenCol] ?? '';
    if (!isValidDeviceId(deviceId) || token === '') throw new Error(`token CSV line ${i + 2}: bad deviceId or empty token`);
    return { deviceId, token };
  });
}

function splitCsvLine(line: string): string[] {
  const cells: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') (cur += '"'), i++;
      else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') cells.push(cur), (cur = '');
    else cur += ch;
  }
  cells.push(cur);
  return cells;
}

export async function readTokenCsv(path: string): Promise<DeviceToken[]> {
  return parseTokenCsv(await readFile(path, 'utf8'));
}
