// `baton freeze`: a stop to deploys until `baton unfreeze`, with who, when and why. Kept in
// stateDir/freeze.json, written atomically, so it survives a daemon restart.
import type { Freeze } from '../api/freeze.js';
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../state/atomic.js';
import { readStateFile } from '../state/read.js';

export type { Freeze } from '../api/freeze.js';

const freezeSchema = z.object({ reason: z.string(), actor: z.string(), since: z.string() });
const fileSchema = z.object({ format: z.literal(1), freeze: freezeSchema.nullable() });

export class FreezeStore {
  readonly file: string;
  private current: Freeze | null;

  constructor(stateDir: string) {
    this.file = path.join(stateDir, 'freeze.json');
    this.current = this.load();
  }

  get(): Freeze | null {
    return this.current;
  }

  /** Freezes deploys (replacing a freeze already set); returns the new one and the replaced one. */
  freeze(reason: string, actor: string, now = new Date()): { freeze: Freeze; replaced: Freeze | null } {
    const replaced = this.current;
    const freeze: Freeze = { reason, actor, since: now.toISOString() };
    this.save(freeze);
    return { freeze, replaced };
  }

  /** Lifts the freeze; returns the one lifted, or null when there was none. */
  unfreeze(): Freeze | null {
    const lifted = this.current;
    if (lifted) this.save(null);
    return lifted;
  }

  private save(freeze: Freeze | null): void {
    writeFileAtomic(this.file, `${JSON.stringify({ format: 1, freeze }, null, 2)}\n`);
    this.current = freeze;
  }

  private load(): Freeze | null {
    const file = readStateFile(this.file, fileSchema, 'fix it, or move it aside to lift the freeze');
    return file?.freeze ?? null;
  }
}
