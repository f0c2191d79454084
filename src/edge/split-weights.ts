// Integer server weights for a canary share, shared by the edges that split traffic by weight
// (nginx, HAProxy) rather than per request as the built-in proxy does.

/**
 * Integer server weights for a canary share on edges that split by weight (nginx, HAProxy):
 * `stable` instances at weight `s` and `canary` ones at `c` so that the canary gets `percent`
 * of the requests. 0 or 100 leave one side out entirely (weight null). `max` is the edge's
 * highest weight (HAProxy: 256).
 */
export function splitWeights(
  stable: number,
  canary: number,
  percent: number,
  max = 1000,
): { stable: number | null; canary: number | null } {
  if (canary === 0 || percent <= 0) return { stable: 1, canary: null };
  if (stable === 0 || percent >= 100) return { stable: null, canary: 1 };
  // canary*c / (canary*c + stable*s) = p / 100  =>  c : s = p*stable : (100-p)*canary
  let c = percent * stable;
  let s = (100 - percent) * canary;
  const g = gcd(Math.round(c * 100), Math.round(s * 100)) / 100;
  c /= g;
  s /= g;
  const scale = Math.max(c, s) > max ? max / Math.max(c, s) : 1;
  return { stable: Math.max(1, Math.round(s * scale)), canary: Math.max(1, Math.round(c * scale)) };
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
