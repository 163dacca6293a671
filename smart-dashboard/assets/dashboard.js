// smart dashboard: refreshes the live box from status.json every few seconds, without reloading
// the page, and pauses while the tab is hidden. Without this script the page shows the state as
// of its last render. No framework, nothing fetched from elsewhere.
'use strict';

(function () {
  const box = document.getElementById('live');
  if (!box || !box.dataset.statusUrl) {
    return;
  }
  // Opened from disk (file://), the browser may not fetch status.json at all: say so calmly and
  // do not poll; the page shows the state as of its render, which is all a file can show.
  if (typeof location !== 'undefined' && location.protocol === 'file:') {
    box.classList.add('offline');
    for (const el of box.querySelectorAll('[data-field="conn"]')) {
      el.textContent = 'Opened as a file, so this box shows the state when the page was ' +
        'rendered. For live updates every few seconds, serve the dashboard dir over HTTP ' +
        '(for example `python3 -m http.server` in it) or rerun `smart dashboard` to refresh.';
    }
    return;
  }
  const PERIOD_MS = 3000;
  const url = box.dataset.statusUrl;
  const renderedRun = box.dataset.runId || '';
  const renderedDecisions = Number(box.dataset.decisions || 0);
  const renderedState = box.dataset.state || '';
  const baselineP50 = Number(box.dataset.baselineP50Us || 0);
  let timer = null;

  function set(field, text) {
    for (const el of box.querySelectorAll('[data-field="' + field + '"]')) {
      el.textContent = text;
    }
  }

  function latency(us) {
    const ms = us / 1000;
    if (ms >= 10000) return (ms / 1000).toFixed(1) + ' s';
    if (ms >= 100) return ms.toFixed(0) + ' ms';
    if (ms >= 10) return ms.toFixed(1) + ' ms';
    return ms.toFixed(2) + ' ms';
  }

  function duration(secs) {
    const s = Math.max(0, Math.round(secs));
    const pad = (n) => String(n).padStart(2, '0');
    if (s >= 2 * 86400) return Math.floor(s / 86400) + ' days';
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + pad(s % 60) + ' s';
    return Math.floor(s / 3600) + ' h ' + pad(Math.floor((s % 3600) / 60)) + ' min';
  }

  function count(n) {
    return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  }

  function signedPct(x) {
    const text = Math.abs(x).toFixed(1);
    if (Number(text) === 0) return text + ' %';
    return (x < 0 ? '\u2212' : '+') + text + ' %';
  }

  const LABELS = {
    keep: 'Keep', revert: 'Revert', inconclusive: 'Inconclusive',
    aborted: 'Aborted', 'kept-by-coach': 'Kept by coach',
  };

  // How a run ended, worded as `format::run_end` words it in the rendered page.
  const END = {
    completed: 'the run completed', timed_out: 'the run stopped at its time limit',
    cancelled: 'the run was cancelled',
    baseline_unsound: 'the run stopped because the baseline was unsound', failed: 'the run failed',
    recovered: 'the run was interrupted and later recovered',
  };

  function show(s) {
    const running = s.state === 'running';
    const live = running ? s.live : null;
    set('state', running ? 'Running' : 'Finished');
    box.classList.remove('stale');
    const state = box.querySelector('[data-field="state"]');
    if (state) {
      state.className = 'state state-' + (running ? 'running' : 'finished');
    }
    set('experiment', s.experiment);
    set('variant', s.variant ? s.variant + (s.variant_index ? ' (' + s.variant_index + ' of ' + s.variants + ')' : '') : '–');
    let phase = String(s.phase).replace(/_/g, ' ');
    if (s.arm) phase += ' ' + s.arm + (live && live.warming_up ? ' (cool-down)' : '');
    set('phase', phase);
    set('block', s.block && s.blocks ? s.block + ' of ' + s.blocks : '–');
    set('elapsed', duration(s.elapsed_s));
    set('left', running ? duration(s.left_s) : '–');
    const p50 = live && live.p50_us != null ? live.p50_us : null;
    set('p50', p50 != null ? latency(p50) : '–');
    const comparable = p50 != null && baselineP50 > 0 && s.run_id === renderedRun && s.arm && s.arm !== 'baseline';
    set('p50-vs', comparable ? '(' + signedPct((p50 - baselineP50) / baselineP50 * 100) + ' vs baseline)' : '');
    set('errors', live
      ? count(live.errors) + ' of ' + count(live.requests) + ' (' + (live.requests ? (live.errors / live.requests * 100).toFixed(2) + ' %' : '–') + ')'
      : '–');
    set('rate', live ? live.rate_per_s.toFixed(1) + ' req/s' : '–');
    const decided = (s.decisions || []).map((d) => d[0] + ': ' + (LABELS[d[1]] || d[1]));
    set('decisions', decided.length ? decided.join(', ') : 'none yet');
    set('end', s.end ? END[s.end] || 'the run ended: ' + String(s.end).replace(/_/g, ' ') : '');
    set('updated', String(s.updated).slice(0, 19).replace('T', ' ') + ' UTC');
    const age = (Date.now() - Date.parse(s.updated)) / 1000;
    if (running && age > 120) {
      box.classList.add('stale');
      set('conn', 'No update for ' + duration(age) + ': is the run\'s process (pid ' + s.pid +
        ') still alive? `smart status` on the server tells.');
    } else {
      set('conn', '');
    }
    const blockMoved = box.dataset.block !== undefined && String(s.block ?? '') !== box.dataset.block;
    const changed = s.run_id !== renderedRun || (s.decisions || []).length !== renderedDecisions ||
      s.state !== renderedState || blockMoved;
    const notice = document.getElementById('live-new');
    if (notice) {
      notice.hidden = !changed;
    }
  }

  async function poll() {
    try {
      const response = await fetch(url, { cache: 'no-store' });
      if (!response.ok) {
        throw new Error('HTTP ' + response.status);
      }
      show(await response.json());
    } catch (err) {
      box.classList.add('stale');
      set('conn', 'Live updates paused: status.json could not be read (' + err.message + '); retrying.');
    }
  }

  function start() {
    if (timer === null) {
      poll();
      timer = setInterval(poll, PERIOD_MS);
    }
  }

  function stop() {
    if (timer !== null) {
      clearInterval(timer);
      timer = null;
    }
  }

  document.addEventListener('visibilitychange', () => (document.hidden ? stop() : start()));
  if (!document.hidden) {
    start();
  }
}());
