// Runs assets/dashboard.js under node with a minimal fake DOM, fake timers and a counting fetch,
// and checks that polling of status.json stops while the tab is hidden and resumes (at once) when
// it is shown again. Usage: node visibility.js PATH/TO/dashboard.js. Exits 1 on the first failed
// check, naming it; prints "ok: N checks" otherwise.
'use strict';

const fs = require('fs');
const vm = require('vm');

const script = fs.readFileSync(process.argv[2], 'utf8');

let now = 0;
let nextId = 1;
const intervals = new Map();
let fetches = 0;
const listeners = {};
const status = {
  state: 'running', run_id: 'r1', experiment: 'e', variant: 'v', variant_index: 1, variants: 1,
  phase: 'measuring', arm: 'v', block: 2, blocks: 8, elapsed_s: 30, left_s: 90,
  live: { p50_us: 1500, errors: 0, requests: 100, rate_per_s: 50, warming_up: false },
  decisions: [], updated: '2026-11-26T21:00:00Z', pid: 1,
};
const fields = {};
const classes = new Set();
const box = {
  dataset: { statusUrl: 'status.json', runId: 'r1', decisions: '0', state: 'running', baselineP50Us: '1000' },
  classList: { add(c) { classes.add(c); }, remove(c) { classes.delete(c); } },
  querySelectorAll(selector) {
    const name = /data-field="([^"]+)"/.exec(selector)[1];
    fields[name] = fields[name] || { textContent: '' };
    return [fields[name]];
  },
  querySelector(selector) {
    return this.querySelectorAll(selector)[0];
  },
};
const document = {
  hidden: false,
  getElementById: (id) => (id === 'live' ? box : null),
  addEventListener: (type, fn) => { listeners[type] = fn; },
};
const sandbox = {
  document,
  location: { protocol: process.argv[3] || 'http:' },
  fetch: async () => { fetches += 1; return { ok: true, json: async () => status }; },
  setInterval: (fn, ms) => { const id = nextId++; intervals.set(id, { fn, ms, due: now + ms }); return id; },
  clearInterval: (id) => { intervals.delete(id); },
  Date: { now: () => Date.parse(status.updated) + 1000, parse: Date.parse },
  Number, String, Math, Error,
};

// Advances the fake clock by `ms`, firing intervals as they fall due.
async function advance(ms) {
  const end = now + ms;
  for (;;) {
    const due = [...intervals.values()].filter((t) => t.due <= end).sort((a, b) => a.due - b.due)[0];
    if (!due) break;
    now = due.due;
    due.due += due.ms;
    due.fn();
    await new Promise((resolve) => setImmediate(resolve));
  }
  now = end;
  await new Promise((resolve) => setImmediate(resolve));
}

let checks = 0;
function check(what, ok) {
  checks += 1;
  if (!ok) {
    console.error('FAILED: ' + what + ' (fetches ' + fetches + ', timers ' + intervals.size + ')');
    process.exit(1);
  }
}

(async () => {
  vm.runInNewContext(script, sandbox);
  if (sandbox.location.protocol === 'file:') {
    // Opened from disk: no polling, a calm explanation, no "stale" (orange) state.
    await advance(10000);
    check('a page opened as a file does not poll', fetches === 0 && intervals.size === 0);
    const conn = (fields.conn && fields.conn.textContent) || '';
    check('it explains live updates: ' + conn, conn.startsWith('Opened as a file') && conn.includes('over HTTP'));
    check('without alarm words', !/paused|could not|error|failed/i.test(conn));
    check('and is marked offline, not stale', classes.has('offline') && !classes.has('stale'));
    console.log('ok: ' + checks + ' checks');
    return;
  }
  await advance(0);
  check('a visible page polls at once', fetches === 1);
  check('the live box shows the polled status', fields.p50 && fields.p50.textContent === '1.50 ms');
  await advance(9000);
  check('and every 3 s', fetches === 4);

  document.hidden = true;
  listeners.visibilitychange();
  await advance(60000);
  check('a hidden page does not poll', fetches === 4);
  check('and keeps no timer', intervals.size === 0);

  document.hidden = false;
  listeners.visibilitychange();
  await advance(0);
  check('shown again, it polls at once', fetches === 5);
  await advance(3000);
  check('and every 3 s again', fetches === 6);
  listeners.visibilitychange();
  await advance(0);
  check('a second "visible" event starts no second timer', intervals.size === 1 && fetches === 6);
  Object.assign(status, { state: 'finished', end: 'completed', live: null });
  await advance(3000);
  check('a finished run reads "the run completed"', fields.end && fields.end.textContent === 'the run completed');
  console.log('ok: ' + checks + ' checks');
})().catch((err) => { console.error('FAILED: ' + err.stack); process.exit(1); });
