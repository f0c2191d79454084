// How a deployment ends badly: failed before traffic moved (the old release never noticed), or
// rolled back after it moved. Both carry the reason users see in the CLI, history and logs.
import { BatonError } from '../errors.js';

export class DeployFailure extends BatonError {
  constructor(
    message: string,
    readonly rolledBack: boolean,
    cause?: unknown,
  ) {
    super('BATON_E_DEPLOY_FAILED', message, { cause });
  }
}

export class DeployAborted extends BatonError {
  constructor(by: string) {
    super('BATON_E_DEPLOY_FAILED', `aborted by ${by}`);
  }
}

export function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
