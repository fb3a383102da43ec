// Ports of environments (docs/architecture.md §5). db/src/environment-store.ts implements the store; the composition
// (server/src/compose/pki-home.ts) implements the CA factory and the issuing CAs, because only it reads and writes key files.
import type { X509Certificate } from 'node:crypto';
import type { IssuingCa } from '../ca/types.js';

/** An environment's public chain: what its devices and its broker trust. */
export interface EnvironmentChain {
  issuingCertificatePem: string;
  rootCertificatePem: string;
}

export interface EnvironmentRecord extends EnvironmentChain {
  name: string;
  ownRoot: boolean;
  createdAt: Date;
  createdBy: string;
  deletedAt: Date | null;
}

export type EnvironmentCreateResult = { outcome: 'created'; environment: EnvironmentRecord } | { outcome: 'exists'; deleted: boolean };
export type EnvironmentDeleteResult =
  | { outcome: 'deleted' }
  | { outcome: 'missing' }
  /** Live (unrevoked, unexpired) certificates and unspent tokens still belong to it. */
  | { outcome: 'in-use'; certificates: number; tokens: number };

export interface EnvironmentCommand {
  actor: string;
  requestId?: string | undefined;
}

export interface EnvironmentStore {
  /** Live environments, by name. */
  list(): Promise<EnvironmentRecord[]>;
  /** A live or deleted environment; undefined when the name was never created (or `default` before its chain is recorded). */
  get(name: string): Promise<EnvironmentRecord | undefined>;
  /**
   * Under a lock on the name: `exists` when the name is taken (live or deleted; names are not given out again).
   * Otherwise `materialize` makes the CA (and keeps its keys), then the row, the built-in profiles and the audit row are
   * stored in one transaction: a failure leaves no row, only key files nobody trusts.
   */
  create(input: { name: string; ownRoot: boolean } & EnvironmentCommand, materialize: () => Promise<EnvironmentChain>): Promise<EnvironmentCreateResult>;
  /** Marks it deleted with its profiles and an audit row; refused while live certificates or unspent tokens belong to it. */
  delete(name: string, command: EnvironmentCommand): Promise<EnvironmentDeleteResult>;
  /**
   * Records the chain of `default` (the home's CA, older than the table). `mismatch` when another chain is recorded:
   * this process's ENROLLD_HOME is not the one the database was made with.
   */
  recordDefaultChain(chain: EnvironmentChain): Promise<{ outcome: 'recorded' } | { outcome: 'mismatch'; recorded: EnvironmentChain }>;
}

/** Makes a new environment's CA: fresh keys kept where this process keeps CA keys, and the public chain. */
export interface EnvironmentCaFactory {
  create(name: string, options: { ownRoot: boolean }): Promise<EnvironmentChain>;
}

/** Each environment's issuing CA, for the processes that sign (API, worker). */
export interface IssuingCas {
  /** The issuing CA that signs certificates of a live environment; EnrollError when unknown, deleted or without a key here. */
  forIssuance(environment: string): Promise<IssuingCa>;
  /** The issuing CA that signs an environment's CRLs; a deleted environment keeps its CRL while its revocations matter. */
  forCrl(environment: string): Promise<IssuingCa>;
  /** The environment whose issuing CA signed this certificate (signature checked), if it is one of ours. */
  issuerOf(certificate: X509Certificate): Promise<string | undefined>;
}
