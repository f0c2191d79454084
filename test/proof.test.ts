// The zero-downtime proof (test/helpers/proof-suite.ts) with the built-in proxy as the edge.
import { proofSuite } from './helpers/proof-suite.js';

proofSuite('builtin');
