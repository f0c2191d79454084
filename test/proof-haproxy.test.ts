// The zero-downtime proof (test/helpers/proof-suite.ts) with a real HAProxy as the edge.
import { proofSuite } from './helpers/proof-suite.js';

proofSuite('haproxy');
