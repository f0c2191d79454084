// The strategies by name, and the config a `--strategy` other than the configured one runs
// with (the schema's defaults: only strategies without steps can run that way).
import { defaultStrategyConfig, type StrategyConfig, type StrategyType } from '../config/schema.js';
import { BatonError } from '../errors.js';
import { blueGreen } from './blue-green.js';
import { canary } from './canary.js';
import { recreate } from './recreate.js';
import { rolling } from './rolling.js';
import type { Strategy } from './strategy.js';

export const STRATEGIES: Record<StrategyType, Strategy> = {
  'blue-green': blueGreen,
  rolling,
  recreate,
  canary,
  ab: canary,
};

/** The config of `--strategy type` when the config file sets another one: its defaults. */
export function defaultStrategy<T extends StrategyType>(type: T): Extract<StrategyConfig, { type: T }> {
  const config = defaultStrategyConfig(type);
  if (config) return config as Extract<StrategyConfig, { type: T }>;
  throw new BatonError(
    'BATON_E_BAD_REQUEST',
    `--strategy ${type} needs its steps in the config: set strategy.type: ${type} (with ${type === 'canary' ? 'steps' : 'match and duration'}) in baton.yaml`,
  );
}
