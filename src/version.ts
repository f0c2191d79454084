// The package version: inlined by the single-executable build (scripts/build-binary.js
// defines BATON_BUNDLED_VERSION), else read once from package.json (two levels up from src/ and dist/).
import { createRequire } from 'node:module';

declare const BATON_BUNDLED_VERSION: string | undefined;

function packageVersion(): string {
  if (typeof BATON_BUNDLED_VERSION === 'string') return BATON_BUNDLED_VERSION;
  const require = createRequire(import.meta.url);
  return (require('../package.json') as { version: string }).version;
}

export const VERSION: string = packageVersion();
