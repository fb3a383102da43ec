// The EST client scripts the README shows, verbatim apart from the variables, run as real processes: curl + openssl,
// and strongSwan `pki --estca` / `pki --est`. Each function returns what the script wrote.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

export interface EstScriptEnv {
  /** https://localhost:PORT (strongSwan appends /.well-known/est/... itself). */
  url: string;
  /** The root CA file. */
  ca: string;
  device: string;
  token: string;
}

export const CURL_OPENSSL_SCRIPT = `
EST=$URL/.well-known/est
curl -sSf --cacert $CA $EST/cacerts | openssl base64 -d -A | openssl pkcs7 -inform DER -print_certs -out cacerts.pem
curl -sSf --cacert $CA $EST/csrattrs | openssl base64 -d -A | openssl asn1parse -inform DER > csrattrs.txt
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout device.key -subj "/CN=$DEVICE" -outform DER -out device.csr
openssl base64 -A -in device.csr | curl -sSf --cacert $CA -u "$DEVICE:$TOKEN" -H 'Content-Type: application/pkcs10' --data-binary @- $EST/simpleenroll | openssl base64 -d -A | openssl pkcs7 -inform DER -print_certs -out device.pem
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout device-new.key -subj "/CN=$DEVICE" -outform DER -out device-new.csr
openssl base64 -A -in device-new.csr | curl -sSf --cacert $CA --cert device.pem --key device.key -H 'Content-Type: application/pkcs10' --data-binary @- $EST/simplereenroll | openssl base64 -d -A | openssl pkcs7 -inform DER -print_certs -out device-new.pem
`;

export const STRONGSWAN_SCRIPT = `
pki --estca --url $URL --cacert $CA --caout ca.pem --outform pem --force
pki --gen --type ecdsa --size 256 --outform pem > device.key
pki --req --in device.key --type priv --dn "CN=$DEVICE" --outform der > device.csr
pki --est --url $URL --cacert ca.pem --cacert ca-1.pem --in device.csr -p "$DEVICE:$TOKEN" --outform pem > device.pem
pki --gen --type ecdsa --size 256 --outform pem > device-new.key
pki --req --in device-new.key --type priv --dn "CN=$DEVICE" --outform der > device-new.csr
pki --est --url $URL --cacert ca.pem --cacert ca-1.pem --in device-new.csr --cert device.pem --key device.key --outform pem > device-new.pem
`;

export interface ScriptResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runScript(script: string, cwd: string, env: EstScriptEnv): Promise<ScriptResult> {
  return new Promise((resolve) => {
    execFile(
      'bash',
      ['-c', `set -euo pipefail\n${script}`],
      {
        cwd,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: cwd, URL: env.url, CA: env.ca, DEVICE: env.device, TOKEN: env.token },
        timeout: 60_000,
        maxBuffer: 8 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        // strongSwan prints "plugin '…' failed to load" lines for plugins this package lacks: noise.
        resolve({ code, stdout, stderr: stderr.split('\n').filter((l) => !/^plugin '.*' failed to load/.test(l)).join('\n') });
      },
    );
  });
}

export async function readOutput(dir: string, file: string): Promise<string> {
  return readFile(path.join(dir, file), 'utf8');
}
