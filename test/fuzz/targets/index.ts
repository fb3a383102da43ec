import type { FuzzTarget } from '../engine.js';
import { csrTarget } from './csr.js';
import { derTarget } from './der.js';
import { mqttTarget } from './mqtt.js';

export const targets: Record<string, FuzzTarget> = { csr: csrTarget, der: derTarget, mqtt: mqttTarget };
