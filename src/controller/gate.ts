// The deploy gate: a controller extension that refuses a deploy outside the deploy windows
// (`windows:` in baton.yaml) or while deploys are frozen (`baton freeze`), saying why and from
// when deploys are allowed again. `--force` goes through (the history entry says forced: true);
// a rollback always goes through: it is the way out of a bad release.
import type { FreezeView as GateState } from '../api/freeze.js';
import type { WindowsConfig } from '../config/windows.js';
import { BatonError } from '../errors.js';
import type { Logger } from '../log.js';
import type { DeployExtension, DeployRequest } from './events.js';
import type { FreezeStore } from './freeze.js';
import { checkWindow, formatInZone } from './window-check.js';

/** What GET /v1/freeze answers: the freeze, and the deploy windows right now (the wire type). */
export type { FreezeView as GateState } from '../api/freeze.js';

export class DeployGate implements DeployExtension {
  /**
   * `windows` is read at every check, so a config reloaded with SIGHUP applies to the next
   * deploy.
   */
  constructor(
    private readonly windows: () => WindowsConfig | undefined,
    readonly freezes: FreezeStore,
    private readonly log: Logger,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  admit(req: DeployRequest): void {
    if (req.rollback) return;
    const now = this.clock();
    const why = this.refusal(now);
    if (why === null) return;
    if (req.force) {
      this.log.warn(
        { version: req.version, actor: req.actor, refused: why.text },
        'deploy forced (--force) past the deploy windows or a freeze',
      );
      return;
    }
    throw new BatonError(
      'BATON_E_REFUSED',
      `deploy of ${req.version} refused: ${why.text}. Use --force to deploy anyway (recorded in history); \`baton rollback\` is always allowed`,
      { details: why.details },
    );
  }

  state(now = this.clock()): GateState {
    const w = this.windows();
    if (!w) return { freeze: this.freezes.get(), window: null };
    const check = checkWindow(w, now);
    return {
      freeze: this.freezes.get(),
      window: {
        timezone: w.timezone,
        allow: w.allow ? w.allow.map((r) => r.label) : null,
        deny: w.deny.map((r) => r.label),
        open: check.open,
        ...(check.open
          ? {}
          : {
              reason: check.reason,
              nextOpen: check.nextOpen.toISOString(),
              nextOpenLocal: formatInZone(check.nextOpen, w.timezone),
            }),
      },
    };
  }

  /** Why a deploy may not run at `now`, or null when it may. */
  private refusal(now: Date): { text: string; details: unknown } | null {
    const freeze = this.freezes.get();
    const w = this.windows();
    const check = checkWindow(w, now);
    const parts: string[] = [];
    if (freeze) {
      parts.push(
        `deploys are frozen since ${freeze.since} by ${freeze.actor}: "${freeze.reason}" (\`baton unfreeze\` lifts it)`,
      );
    }
    if (!check.open) {
      parts.push(
        `it is ${formatInZone(now, w!.timezone)}, ${check.reason}; the next allowed time is ${formatInZone(check.nextOpen, w!.timezone)}`,
      );
    }
    if (!parts.length) return null;
    return {
      text: parts.join('; and '),
      details: {
        freeze,
        ...(check.open
          ? {}
          : {
              window: { reason: check.reason, nextOpen: check.nextOpen.toISOString(), timezone: w!.timezone },
            }),
      },
    };
  }
}
