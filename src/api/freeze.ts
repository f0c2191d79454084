// GET, POST and DELETE /v1/freeze: the freeze (who stopped deploys, when, why) and the deploy
// windows right now (src/controller/freeze.ts, gate.ts).

export interface Freeze {
  readonly reason: string;
  readonly actor: string;
  /** ISO time it was set. */
  readonly since: string;
}

/** The deploy windows at this moment. */
export interface WindowView {
  readonly timezone: string;
  readonly allow: string[] | null;
  readonly deny: string[];
  readonly open: boolean;
  /** When closed: which window closes it, and when it opens (ISO and in the zone). */
  readonly reason?: string;
  readonly nextOpen?: string;
  readonly nextOpenLocal?: string;
}

/** GET /v1/freeze. */
export interface FreezeView {
  readonly freeze: Freeze | null;
  /** Null when no windows are configured (deploys any time). */
  readonly window: WindowView | null;
}

/** POST /v1/freeze. */
export interface FreezeBody {
  readonly reason: string;
  readonly actor?: string;
}

export interface FreezeAnswer {
  readonly freeze: Freeze;
  /** The freeze this one replaced, if one was set. */
  readonly replaced: Freeze | null;
}

/** DELETE /v1/freeze. */
export interface UnfreezeBody {
  readonly actor?: string;
}

export interface UnfreezeAnswer {
  /** The freeze lifted; null when there was none. */
  readonly unfrozen: Freeze | null;
  readonly window: WindowView | null;
}
