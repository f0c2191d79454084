#!/usr/bin/env node
// The `baton` command: runs the compiled CLI (built by `npm ci` / `npm run build`).
import('../dist/cli/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/main.js')) {
    console.error(
      'baton: the CLI is not built yet. Run `npm ci` (or `npm run build`) in the baton folder first.',
    );
    process.exit(2);
  }
  throw err;
});
