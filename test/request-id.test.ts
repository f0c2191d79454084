import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newRequestId } from '../src/edge/builtin/request-id.js';

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('request ids are random version-4 UUIDs, none repeated across refills of the byte pool', () => {
  const seen = new Set<string>();
  // 40 refills of the 256-id pool.
  for (let i = 0; i < 10_240; i++) {
    const id = newRequestId();
    assert.match(id, V4);
    seen.add(id);
  }
  assert.equal(seen.size, 10_240);
  // Every hex digit turns up in every random position (a stuck nibble would not).
  const ids = [...seen];
  for (const at of [0, 7, 9, 15, 20, 24, 35]) {
    const digits = new Set(ids.map((id) => id[at]));
    assert.equal(digits.size, 16, `position ${at}`);
  }
});
