// Byte copies for the raw engine's head rewrites. Most pieces of a head are a few dozen bytes, and
// for those a plain loop is about twice as fast as Buffer#copy or Buffer#write (each a call into
// C++ or a new Uint8Array view per call); longer pieces go to Buffer#copy. Measured with
// `BENCH_ENGINE=raw npm run bench:proxy` (issue #16).

/** Up to this many bytes are copied by the loop. */
const LOOP_MAX = 48;

/** Copies src[s, e) to out at n; returns the offset after it. */
export function putSpan(out: Buffer, n: number, src: Buffer, s: number, e: number): number {
  if (e - s > LOOP_MAX) return n + src.copy(out, n, s, e);
  for (let p = s; p < e; p++) out[n++] = src[p]!;
  return n;
}

/** src[s, e) in a buffer of its own (src is a shared read buffer the next read overwrites). */
export function copyOf(src: Buffer, s: number, e: number): Buffer {
  const b = Buffer.allocUnsafe(e - s);
  src.copy(b, 0, s, e);
  return b;
}

/** Copies all of `b` (a constant) to out at n. */
export function putBytes(out: Buffer, n: number, b: Buffer): number {
  return putSpan(out, n, b, 0, b.length);
}

/** Writes `s` as latin1 (each code unit's low byte, as Buffer#write's 'latin1') to out at n. */
export function putLatin1(out: Buffer, n: number, s: string): number {
  if (s.length > LOOP_MAX) return n + out.write(s, n, 'latin1');
  for (let i = 0; i < s.length; i++) out[n++] = s.charCodeAt(i);
  return n;
}

/** The bytes of a constant string. */
export function latin1(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}
