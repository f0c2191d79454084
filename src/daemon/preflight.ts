// What `baton up` checks after the config and before it opens a port or touches an instance:
// the state directory can hold the state, and the state files in it have the shape Baton
// writes. A problem refuses the start (BATON_E_STATE, exit 8) with nothing changed.
import type { BatonConfig } from '../config/schema.js';
import { FreezeStore } from '../controller/freeze.js';
import { StateStore } from '../controller/state.js';
import { checkStateDir } from '../state/dir.js';
import { loadRouteState } from '../state/routes.js';

export function checkState(config: BatonConfig): void {
  checkStateDir(config.stateDirPath, config.file);
  if (config.app) {
    new StateStore(config.stateDirPath).load();
    new FreezeStore(config.stateDirPath);
  } else loadRouteState(config.stateDirPath);
}
