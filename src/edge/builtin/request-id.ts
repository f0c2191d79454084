// New X-Request-Id values: random UUIDs in version 4 form (as crypto.randomUUID's), made from a pool
// of random bytes filled 256 ids at a time and written as hex into one scratch buffer, so each id
// is one string. crypto.randomUUID joins 20 strings per id: a quarter of the bytes the raw engine
// allocated per request (heap sampling under `npm run bench:proxy`, issue #16).
import { randomFillSync } from 'node:crypto';

const IDS = 256;
const pool = Buffer.allocUnsafe(16 * IDS);
let next = IDS;

const HEX = Buffer.from('0123456789abcdef', 'latin1');
/** Where each random byte's two hex digits go in xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx. */
const AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
const scratch = Buffer.from('00000000-0000-0000-0000-000000000000', 'latin1');

/** A new random request id: 122 random bits, lower-case hex, 8-4-4-4-12. */
export function newRequestId(): string {
  if (next === IDS) {
    randomFillSync(pool);
    next = 0;
  }
  const o = 16 * next++;
  for (let i = 0; i < 16; i++) {
    let b = pool[o + i]!;
    // RFC 9562 §5.4: the version (4) in byte 6's high nibble, the variant (10) in byte 8's top bits.
    if (i === 6) b = (b & 0x0f) | 0x40;
    else if (i === 8) b = (b & 0x3f) | 0x80;
    const at = AT[i]!;
    scratch[at] = HEX[b >> 4]!;
    scratch[at + 1] = HEX[b & 15]!;
  }
  return scratch.toString('latin1');
}
