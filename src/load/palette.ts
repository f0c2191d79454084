// Colours of the report's versions: N versions get N different colours, the same one in every
// chart of a report. Twelve hand-picked first (far apart, none grey), then hues around the
// wheel by the golden angle, at three lightnesses, skipping any colour already given.

/** For answers that named no version ('-'): grey, which no version gets. */
export const NO_VERSION_COLOUR = '#9e9e9e';

export const FIXED_COLOURS: readonly string[] = [
  '#1f77b4', // blue
  '#ff7f0e', // orange
  '#2ca02c', // green
  '#d62728', // red
  '#9467bd', // purple
  '#8c564b', // brown
  '#e377c2', // pink
  '#17becf', // cyan
  '#bcbd22', // olive
  '#1a237e', // navy
  '#00695c', // teal
  '#ffd54f', // amber
];

const GOLDEN_ANGLE = 137.508;
const LIGHTNESS = [45, 62, 35];

function hex(n: number): string {
  return Math.round(n * 255)
    .toString(16)
    .padStart(2, '0');
}

/** `hsl(h, s%, l%)` as #rrggbb. */
export function hslToHex(h: number, s: number, l: number): string {
  const sat = s / 100;
  const light = l / 100;
  const a = sat * Math.min(light, 1 - light);
  const f = (k: number): number => {
    const m = (k + h / 30) % 12;
    return light - a * Math.max(-1, Math.min(m - 3, 9 - m, 1));
  };
  return `#${hex(f(0))}${hex(f(8))}${hex(f(4))}`;
}

/**
 * A colour for each version, in the order given (the report passes them in the order they first
 * answered): all different, none the no-version grey. '-' (no version) gets the grey.
 */
export function versionColours(versions: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const used = new Set<string>([NO_VERSION_COLOUR]);
  let fixed = 0;
  let generated = 0;
  for (const v of versions) {
    if (v in out) continue;
    if (v === '-') {
      out[v] = NO_VERSION_COLOUR;
      continue;
    }
    let colour = FIXED_COLOURS[fixed++];
    while (colour === undefined || used.has(colour)) {
      const i = generated++;
      colour = hslToHex((i * GOLDEN_ANGLE) % 360, 65, LIGHTNESS[i % LIGHTNESS.length]!);
    }
    used.add(colour);
    out[v] = colour;
  }
  return out;
}
