// `npm run build:binary`: one self-contained executable, dist/baton, with Node's single-executable
// applications (SEA). Node 20's SEA runs ONE CommonJS script, so the CLI is bundled with esbuild
// into dist/baton.cjs first; the version is inlined and Chart.js (for `load --report`) is an asset.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.join(ROOT, 'dist');
const BUNDLE = path.join(DIST, 'baton.cjs');
const BLOB = path.join(DIST, 'baton.blob');
const OUT = path.join(DIST, 'baton');
// The fuse Node's binary carries for SEA (from Node's documentation; fixed across versions).
const SENTINEL = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

const require = createRequire(import.meta.url);
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

// main.ts ends with a top-level await, which CommonJS cannot hold: run the same code as a promise.
const TAIL = 'const code = await main(process.argv);\nprocess.exitCode = code;';
const noTopLevelAwait = {
  name: 'no-top-level-await',
  setup(b) {
    b.onLoad({ filter: /src[\\/]cli[\\/]main\.ts$/ }, (args) => {
      const src = readFileSync(args.path, 'utf8');
      if (!src.includes(TAIL))
        throw new Error(`${args.path} no longer ends with:\n${TAIL}\nupdate ${import.meta.url}`);
      return {
        contents: src.replace(TAIL, 'void main(process.argv).then((code) => (process.exitCode = code));'),
        loader: 'ts',
      };
    });
  },
};

await build({
  entryPoints: [path.join(ROOT, 'src/cli/main.ts')],
  outfile: BUNDLE,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  define: { BATON_BUNDLED_VERSION: JSON.stringify(pkg.version) },
  plugins: [noTopLevelAwait],
  logLevel: 'warning',
  // import.meta is empty in CommonJS; the code that uses it checks isSea() first.
  logOverride: { 'empty-import-meta': 'silent' },
});

const chart = path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.min.js');
const seaConfig = path.join(DIST, 'sea-config.json');
writeFileSync(
  seaConfig,
  JSON.stringify({
    main: BUNDLE,
    output: BLOB,
    disableExperimentalSEAWarning: true,
    assets: { 'chart.umd.min.js': chart },
  }),
);
execFileSync(process.execPath, ['--experimental-sea-config', seaConfig], { stdio: 'inherit' });

copyFileSync(process.execPath, OUT);
chmodSync(OUT, 0o755);
execFileSync(
  process.execPath,
  [require.resolve('postject/dist/cli.js'), OUT, 'NODE_SEA_BLOB', BLOB, '--sentinel-fuse', SENTINEL],
  // Its "Can't find string offset for section name '.note.100'" warnings on Linux are harmless;
  // on failure execFileSync throws with its stderr.
  { stdio: 'pipe' },
);
console.log(`built ${path.relative(process.cwd(), OUT)} (baton ${pkg.version}, node ${process.version})`);
