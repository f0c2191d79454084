// The zero-downtime proof (test/helpers/proof-suite.ts) with a real nginx as the edge.
import { proofSuite } from './helpers/proof-suite.js';

proofSuite('nginx');
