// EST (RFC 7030) on the API's HTTPS port, with the bodies of RFC 8951 (base64 DER; Content-Transfer-Encoding: base64
// is accepted and sent, never required). Standard clients use it unmodified: curl + openssl, strongSwan `pki --est`.
//   GET  /.well-known/est/cacerts         → application/pkcs7-mime certs-only (issuing CA, root)        §4.1
//   POST /.well-known/est/simpleenroll    ← application/pkcs10, Basic (device id : token) or Bearer   §4.2.1
//   POST /.well-known/est/simplereenroll  ← application/pkcs10, TLS client certificate (the current)  §4.2.2
//   GET  /.well-known/est/csrattrs        → application/csrattrs                                         §4.5
// Each operation also takes an environment as its label (RFC 7030 §3.2.2: /.well-known/est/<env>/cacerts). Without
// one, cacerts is the `default` environment's chain and enrollment follows the token (re-enrollment the certificate);
// with one, a token or a certificate of another environment is refused before anything is spent or signed.
// Every reply is sent whole with Content-Length: strongSwan rejects chunked replies (docs/architecture.md).
import type { TLSSocket } from 'node:tls';
import express, { Router, type ErrorRequestHandler, type Request, type RequestHandler, type Response } from 'express';
import type { Logger } from 'pino';
import { DEFAULT_ENVIRONMENT, environmentNameSchema, MAX_ENROLL_BODY_BYTES, routes } from '@enrolld/protocol';
import type { EnvironmentService } from '@enrolld/core/environments/environment-service.js';
import { EnrollError } from '@enrolld/core/errors.js';
import type { EstEnrollment } from '@enrolld/core/renewal/est-enrollment.js';
import type { PopLinkingPolicy } from '@enrolld/core/renewal/pop-linking.js';
import type { Renewal } from '@enrolld/core/renewal/renewal.js';
import { problemOf } from '../problem.js';
import { peerCertificateDer } from '../renew-routes.js';
import { requireContentType } from '../request-context.js';
import { channelBindingOf } from './channel-binding.js';
import { csrAttrsDer } from './csrattrs.js';
import { EST_REALM, parseAuthorization } from './est-auth.js';
import { base64Body, certsOnly, certsOnlyWithPkijs } from './pkcs7.js';

export interface EstRoutesDeps {
  renewal: Pick<Renewal, 'renew'>;
  enrollment: Pick<EstEnrollment, 'simpleEnroll'>;
  /** Each environment's chain (issuing CA then root) for cacerts, and the labels a request may name. */
  environments: Pick<EnvironmentService, 'chain' | 'require'>;
  popLinking: PopLinkingPolicy;
  logger: Logger;
}

const PKCS7_CERTS_ONLY = 'application/pkcs7-mime; smime-type=certs-only';

function pemBlocks(pem: string): Buffer[] {
  return [...pem.matchAll(/-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/g)].map((m) =>
    Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'),
  );
}

function sendBase64(res: Response, status: number, contentType: string, der: Buffer): void {
  // A Buffer, so express adds no "; charset=utf-8" to the PKCS#7 media type; send() sets Content-Length.
  res.status(status).set('Content-Type', contentType).set('Content-Transfer-Encoding', 'base64').send(Buffer.from(base64Body(der), 'latin1'));
}

/** The CSR as the client sent it: base64 DER (RFC 8951), raw DER or PEM; parseCsr takes all three. */
function csrBody(req: Request): Buffer {
  const body = req.body as unknown;
  if (!Buffer.isBuffer(body) || body.length === 0) throw new EnrollError('bad-csr', 'the request body must hold the CSR (application/pkcs10, base64 DER per RFC 8951)');
  return body;
}

/** The environment an EST label names (RFC 7030 §3.2.2); undefined for the unlabelled paths. */
function labelOf(req: Request): string | undefined {
  const label = req.params.label;
  if (label === undefined) return undefined;
  const name = environmentNameSchema.safeParse(label);
  if (!name.success) throw new EnrollError('bad-request', `the EST label "${label}" is not an environment name (^[a-z0-9][a-z0-9._-]{0,62}$)`);
  return name.data;
}

/** Each operation at its RFC 7030 path and under an environment label. */
const both = (operation: 'cacerts' | 'simpleenroll' | 'simplereenroll' | 'csrattrs') => [routes.est[operation], `/.well-known/est/:label/${operation}`] as const;

export function estRoutes(deps: EstRoutesDeps): Router {
  const router = Router();
  // Each environment's certs-only reply is built once per issuing CA, off the hot path.
  const cacerts = new Map<string, Buffer>();
  const csrattrs = csrAttrsDer({ requireChallengePassword: deps.popLinking === 'required' });
  const pkcs10 = [
    requireContentType('application/pkcs10'),
    express.raw({ type: () => true, limit: MAX_ENROLL_BODY_BYTES }),
  ];
  /** A label must name a live environment; the request is then held to it. */
  const requiredLabel = async (req: Request): Promise<string | undefined> => {
    const label = labelOf(req);
    if (label !== undefined) await deps.environments.require(label);
    return label;
  };

  const cacertsReply: RequestHandler = async (req, res) => {
    const chain = await deps.environments.chain(labelOf(req) ?? DEFAULT_ENVIRONMENT);
    let reply = cacerts.get(chain);
    if (!reply) cacerts.set(chain, (reply = certsOnlyWithPkijs(pemBlocks(chain))));
    sendBase64(res, 200, 'application/pkcs7-mime', reply);
  };

  const csrattrsReply: RequestHandler = async (req, res) => {
    await requiredLabel(req);
    sendBase64(res, 200, 'application/csrattrs', csrattrs);
  };

  const simpleEnroll: RequestHandler = async (req, res) => {
    const environment = await requiredLabel(req);
    const { user, token } = parseAuthorization(req.get('authorization'));
    const { response } = await deps.enrollment.simpleEnroll(
      { user, token, csr: csrBody(req), channelBinding: channelBindingOf(req.socket as TLSSocket) },
      { requestId: res.locals.requestId as string, environment },
    );
    res.locals.deviceId = response.deviceId;
    // RFC 7030 §4.2.3: certs-only holding only the issued certificate.
    sendBase64(res, 200, PKCS7_CERTS_ONLY, certsOnly(pemBlocks(response.certificate)));
  };

  const simpleReenroll: RequestHandler = async (req, res) => {
    const environment = await requiredLabel(req);
    const result = await deps.renewal.renew(
      {
        credential: { kind: 'certificate', der: peerCertificateDer(req) },
        csr: csrBody(req),
        transport: 'est',
        channelBinding: channelBindingOf(req.socket as TLSSocket),
        popLinking: true,
        environment,
      },
      { requestId: res.locals.requestId as string },
    );
    res.locals.deviceId = result.response.deviceId;
    sendBase64(res, 200, PKCS7_CERTS_ONLY, certsOnly([result.certificateDer]));
  };

  for (const path of both('cacerts')) router.get(path, cacertsReply);
  for (const path of both('csrattrs')) router.get(path, csrattrsReply);
  for (const path of both('simpleenroll')) router.post(path, ...pkcs10, simpleEnroll);
  for (const path of both('simplereenroll')) router.post(path, ...pkcs10, simpleReenroll);

  // RFC 7030 status use where it differs from the API's problem mapping; the rest goes on to the app's handler.
  const estErrors: ErrorRequestHandler = (error, req, res, next) => {
    if (!(error instanceof EnrollError) || res.headersSent) return next(error);
    const requestId = res.locals.requestId as string | undefined;
    if (error.kind === 'conflict' && error.retryAfterSeconds !== undefined) {
      // RFC 7030 §4.2.3: 202 with Retry-After when the request is accepted but the certificate is not ready yet.
      deps.logger.info({ requestId, client: req.ip, path: req.path, why: error.logDetail }, 'EST request still in progress: 202');
      res.status(202).set('Retry-After', String(error.retryAfterSeconds)).send('');
      return;
    }
    if (error.kind === 'unauthorized') {
      // RFC 7030 §3.2.3 / RFC 9110 §15.5.2: a 401 names the scheme to use.
      deps.logger.info({ requestId, client: req.ip, path: req.path, why: error.logDetail }, error.detail);
      res
        .status(401)
        .set('WWW-Authenticate', `Basic realm="${EST_REALM}", charset="UTF-8"`)
        .type('application/problem+json')
        .send(JSON.stringify(problemOf(error, requestId)));
      return;
    }
    next(error);
  };
  router.use('/.well-known/est', estErrors);
  return router;
}
