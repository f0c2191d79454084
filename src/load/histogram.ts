// A latency histogram in the spirit of HdrHistogram: log-linear buckets (each power of two
// split into 64 linear sub-buckets, about 1.6% precision) over 1 µs .. ~1 h. Recording
// is O(1) with no allocation; percentiles are read from the counts.

const SUB_BITS = 7;
const SUB = 1 << SUB_BITS; // sub-buckets per power of two
const MAX_EXP = 32; // 2^32 µs ≈ 71 min

export class Histogram {
  private readonly counts = new Float64Array((MAX_EXP + 1) * SUB);
  count = 0;
  min = Infinity;
  max = 0;
  private sum = 0;

  /** Records a value in milliseconds. */
  record(ms: number): void {
    const us = Math.max(1, Math.round(ms * 1000));
    this.counts[indexOf(us)]!++;
    this.count++;
    this.sum += ms;
    if (ms < this.min) this.min = ms;
    if (ms > this.max) this.max = ms;
  }

  /** The value (ms) at or below which `p` percent of recorded values fall. */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(this.max, upperOf(i) / 1000);
    }
    return this.max;
  }

  mean(): number {
    return this.count ? this.sum / this.count : 0;
  }

  merge(other: Histogram): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i]! += other.counts[i]!;
    this.count += other.count;
    this.sum += other.sum;
    this.min = Math.min(this.min, other.min);
    this.max = Math.max(this.max, other.max);
  }
}

function indexOf(us: number): number {
  if (us < SUB) return us;
  const exp = Math.min(MAX_EXP, 31 - Math.clz32(us) - SUB_BITS + 1);
  const sub = Math.min(SUB - 1, Math.floor(us / 2 ** exp) - SUB / 2);
  return exp * SUB + SUB / 2 + sub;
}

function upperOf(index: number): number {
  if (index < SUB) return index;
  const exp = Math.floor(index / SUB);
  const sub = (index % SUB) - SUB / 2;
  return (sub + SUB / 2 + 1) * 2 ** exp - 1;
}
