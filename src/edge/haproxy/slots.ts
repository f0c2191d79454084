// The backend's server-template slots as Baton reads them (free, routed, or draining: see the
// top of haproxy.ts) from `show servers state`, and which slot each wanted route takes. No I/O
// here: the edge reads HAProxy and sends the commands.
import { EdgeError, targetId } from '../edge.js';
import type { Wanted } from './routes.js';
import type { ServerStat, ServerState } from './runtime.js';

/** srv_op_state values. */
export const OP_STOPPED = 0;
export const OP_RUNNING = 2;
/** srv_admin_state flags: forced, inherited or DNS maintenance (not CMAINT, `disabled` in the config). */
const ADMIN_MAINT = 0x23;
const ADMIN_DRAIN = 0x18;
/** srv_check_state: health checks configured and enabled. */
const CHECKS_ON = 0x2 | 0x4;

/** One server-template slot as HAProxy reports it. */
export interface Slot {
  readonly name: string;
  readonly backup: boolean;
  readonly state: 'free' | 'routed' | 'draining';
  /** `addr:port` as HAProxy has it, and the target id Baton knows it by. */
  readonly key: string;
  readonly id: string;
  readonly opState: number;
  readonly weight: number;
  readonly checked: boolean;
}

export interface Placement {
  readonly slot: Slot;
  readonly want: Wanted;
}

/** The backend and the slots' name prefix (edge.backend, edge.serverPrefix). */
export interface SlotConfig {
  readonly backend: string;
  readonly serverPrefix: string;
}

/** Names of the primary (`<prefix>N`) and backup (`<prefix>-backupN`) slots. */
export interface SlotNames {
  readonly primary: RegExp;
  readonly backup: RegExp;
}

export function slotNames(serverPrefix: string): SlotNames {
  const prefix = serverPrefix.replace(/[.]/g, '\\.');
  return { primary: new RegExp(`^${prefix}(\\d+)$`), backup: new RegExp(`^${prefix}-backup(\\d+)$`) };
}

/** The slots among a backend's servers; `ids` gives the target id of an `addr:port` routed by host name. */
export function slotsOf(
  servers: readonly ServerState[],
  names: SlotNames,
  ids: ReadonlyMap<string, string>,
): Slot[] {
  return servers.flatMap((s): Slot[] => {
    const backup = names.backup.test(s.name);
    if (!backup && !names.primary.test(s.name)) return [];
    const key = targetId({ host: s.addr, port: s.port });
    const state = s.adminState & ADMIN_MAINT ? 'free' : s.adminState & ADMIN_DRAIN ? 'draining' : 'routed';
    return [
      {
        name: s.name,
        backup,
        state,
        key,
        id: ids.get(key) ?? key,
        opState: s.opState,
        weight: s.weight,
        checked: (s.checkState & CHECKS_ON) === CHECKS_ON,
      },
    ];
  });
}

/** Which slot each wanted target takes; refuses before any change when slots are short. */
export function planSlots(
  slots: readonly Slot[],
  wanted: readonly Wanted[],
  cfg: SlotConfig,
): { place: Placement[]; keep: Placement[]; drain: Slot[] } {
  const keep: Placement[] = [];
  const toPlace: Wanted[] = [];
  for (const want of wanted) {
    const slot = slots.find((s) => s.state !== 'free' && s.key === want.key && s.backup === want.backup);
    if (slot) keep.push({ slot, want });
    else toPlace.push(want);
  }
  const place: Placement[] = [];
  const wantedKeys = new Set(wanted.map((w) => w.key));
  for (const backup of [false, true]) {
    const need = toPlace.filter((w) => w.backup === backup);
    // Free slots first; then slots still in drain whose target nobody wants: their drain timed
    // out (long-lived WebSockets), so the controller has stopped or is stopping that target.
    // Reusing the slot does not cut what is in flight: established sessions keep their server
    // connection to the old address.
    const usable = [
      ...slots.filter((s) => s.state === 'free' && s.backup === backup),
      ...slots.filter((s) => s.state === 'draining' && s.backup === backup && !wantedKeys.has(s.key)),
    ];
    if (need.length > usable.length) throw slotsShort(cfg, backup, need.length, usable.length, slots);
    need.forEach((want, i) => place.push({ slot: usable[i]!, want }));
  }
  const kept = new Set(keep.map((p) => p.slot.name));
  const drain = slots.filter((s) => s.state === 'routed' && !kept.has(s.name));
  return { place, keep, drain };
}

function slotsShort(
  cfg: SlotConfig,
  backup: boolean,
  need: number,
  free: number,
  slots: readonly Slot[],
): EdgeError {
  const name = backup ? `${cfg.serverPrefix}-backup` : cfg.serverPrefix;
  const total = slots.filter((s) => s.backup === backup).length;
  const line = `server-template ${name} 1-${total + need - free} 127.0.0.1:1 disabled check${backup ? ' backup' : ''}`;
  return new EdgeError(
    `backend ${cfg.backend} has ${free} free ${name}N slot(s) of ${total} but this change needs ${need}: make the template \`${line}\` in haproxy.cfg (free slots, and slots left in drain that no route wants, count)`,
  );
}

/** A slot's state and last check, for an error saying why it is not up. */
export function checkText(st: ServerStat | undefined): string {
  if (!st) return 'not in show stat';
  if (!st.checkStatus) return `${st.status}, no health check result yet`;
  // "* " before the status: a check is running right now, and its code is not known yet (0).
  const running = st.checkStatus.startsWith('* ');
  const status = running ? st.checkStatus.slice(2) : st.checkStatus;
  const code = running && st.checkCode === '0' ? '' : st.checkCode;
  const detail = [code, st.checkDesc].filter((s) => s !== '').join(' ');
  return `${st.status}, health check ${status}${detail ? ` ${detail}` : ''}${running ? ' (another check running)' : ''}`;
}
