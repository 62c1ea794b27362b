'use strict';
// The status page reads the same REST API as the CLI (GET /v1/...), every two seconds. When the
// API asks for a token (401), the page asks for one and keeps it in this browser's localStorage.
const $ = (id) => document.getElementById(id);
let selected = new URLSearchParams(location.search).get('job');
let selectedSweep = new URLSearchParams(location.search).get('sweep');

async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  const token = localStorage.getItem('facenetToken');
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await res.json().catch(() => ({}));
  if (res.status === 401 || res.status === 403) $('token-form').hidden = false;
  if (!res.ok) throw new Error(data.error || `HTTP ${res.status}`);
  return data;
}

$('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  localStorage.setItem('facenetToken', $('token').value.trim());
  $('token').value = '';
  $('token-form').hidden = true;
  refresh();
});

const pct = (x) => (x === null || x === undefined ? '–' : `${(100 * x).toFixed(1)}%`);
const num = (x, d = 3) => (x === null || x === undefined ? '–' : Number(x).toFixed(d));
const ms = (x) => (x === undefined ? '–' : `${Math.round(x)} ms`);
function cell(row, content, cls) {
  const td = row.insertCell();
  if (content instanceof Node) td.append(content);
  else td.textContent = content;
  if (cls) td.className = cls;
  return td;
}

// A checkpoint's report opens in a new tab at a short-lived signed URL (with a token, a plain
// link would arrive without it). The report is served with its own CSP as a sandboxed, opaque
// origin, so nothing in it can read this page's storage, where the token is kept.
function reportLink(jobId, step) {
  const a = document.createElement('a');
  a.textContent = 'report';
  a.href = `/v1/jobs/${encodeURIComponent(jobId)}/evaluations/${step}/report`;
  a.target = '_blank';
  a.rel = 'noopener';
  a.dataset.testid = 'report-link';
  a.addEventListener('click', async (e) => {
    if (!localStorage.getItem('facenetToken')) return;
    e.preventDefault();
    const link = await api('GET', `${a.href}-link`);
    window.open(link.url, '_blank', 'noopener');
  });
  return a;
}

function fill(table, rows, render) {
  const body = table.tBodies[0];
  body.replaceChildren();
  for (const r of rows) render(body.insertRow(), r);
  if (rows.length === 0) cell(body.insertRow(), 'none', 'muted').colSpan = table.tHead.rows[0].cells.length;
}

function button(label, action, job) {
  const b = document.createElement('button');
  b.textContent = label;
  b.dataset.action = action;
  b.addEventListener('click', async (e) => {
    e.stopPropagation();
    $('action-error').textContent = '';
    try {
      await api('POST', `/v1/jobs/${job.id}/${action}`, {});
    } catch (err) {
      $('action-error').textContent = `${action} ${job.id}: ${err.message}`;
    }
    refresh();
  });
  return b;
}

/** A line chart of [x, y] series into an SVG, with min/max labels; x is a step unless named. */
function chart(svg, series, xName = 'step') {
  svg.replaceChildren();
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return;
  const W = svg.clientWidth || 480,
    H = svg.clientHeight || 220,
    pad = 34;
  const xs = all.map((p) => p[0]),
    ys = all.map((p) => p[1]);
  const x0 = Math.min(...xs),
    x1 = Math.max(...xs, x0 + 1),
    y0 = Math.min(0, ...ys),
    y1 = Math.max(...ys, y0 + 1e-9);
  const X = (x) => pad + ((x - x0) / (x1 - x0)) * (W - 2 * pad),
    Y = (y) => H - pad + 10 - ((y - y0) / (y1 - y0)) * (H - 2 * pad);
  const ns = 'http://www.w3.org/2000/svg';
  const el = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text) e.textContent = text;
    svg.append(e);
    return e;
  };
  el('line', { x1: pad, y1: Y(y0), x2: W - pad, y2: Y(y0), class: 'axis' });
  el('line', { x1: pad, y1: Y(y0), x2: pad, y2: Y(y1), class: 'axis' });
  el('text', { x: 2, y: Y(y1) + 4 }, num(y1, 3));
  el('text', { x: 2, y: Y(y0) }, num(y0, 3));
  el('text', { x: pad, y: H - 4 }, `${xName} ${x0}`);
  el('text', { x: W - pad - 50, y: H - 4 }, `${xName} ${x1}`);
  series.forEach((s, i) => {
    el('polyline', { points: s.points.map((p) => `${X(p[0])},${Y(p[1])}`).join(' '), fill: 'none', stroke: s.color, 'stroke-width': 1.8 });
    for (const p of s.marks || []) el('circle', { cx: X(p[0]), cy: Y(p[1]), r: 4, fill: s.color });
    el('text', { x: W - pad - 110, y: 14 + 14 * i, fill: s.color }, s.label);
  });
}

async function renderDetail(job) {
  $('detail').hidden = false;
  const [history, evaluations, workers] = await Promise.all([
    api('GET', `/v1/jobs/${job.id}/history`),
    api('GET', `/v1/jobs/${job.id}/evaluations`),
    api('GET', '/v1/workers'),
  ]);
  const live = history.filter((h) => !h.rolledBack);
  $('loss-caption').textContent = `${job.id}, last ${live.length} steps`;
  chart($('loss-chart'), [{ label: 'triplet loss', color: '#2f6fdf', points: live.map((h) => [h.step, h.loss]) }]);
  const best = job.evaluation.best;
  chart($('val-chart'), [
    { label: 'VAL', color: '#16803c', points: evaluations.map((e) => [e.step, e.val]), marks: best ? [[best.step, best.val]] : [] },
    { label: 'accuracy', color: '#b54708', points: evaluations.map((e) => [e.step, e.accuracy]) },
  ]);
  fill($('evaluations'), [...evaluations].reverse(), (row, e) => {
    const isBest = best && e.step === best.step;
    row.dataset.step = e.step;
    if (isBest) row.dataset.best = 'true';
    cell(row, `${isBest ? '★ ' : ''}${e.step}`, isBest ? 'best' : '');
    cell(row, pct(e.accuracy));
    cell(row, pct(e.val));
    cell(row, num(e.far, 5));
    cell(row, num(e.auc));
    cell(row, num(e.threshold));
    cell(row, String(e.pairs));
    const all = e.allPairs;
    cell(
      row,
      !all
        ? '–'
        : all.valAt1e3 === null
          ? `unresolved (${all.impostorPairsScored} impostors)`
          : `${pct(all.valAt1e3)} (${all.genuinePairs} / ${all.impostorPairsScored})`,
    );
    cell(row, e.report ? reportLink(job.id, e.step) : '-', 'muted');
    cell(row, e.checkpointDir, 'muted');
  });
  const byId = new Map(workers.map((w) => [w.id, w]));
  const last = live[live.length - 1];
  fill(
    $('workers'),
    job.world.workers.map((id, rank) => ({ id, rank, t: last && last.timings[rank] })),
    (row, w) => {
      cell(row, String(w.rank));
      cell(row, w.id);
      const info = byId.get(w.id);
      cell(row, info ? `${info.backend}${info.gpu ? ` (${info.gpu.description}${info.gpu.software ? ', software' : ''})` : ''}` : 'gone');
      for (const k of ['dataMs', 'computeMs', 'allreduceMs', 'optimizerMs', 'checkpointMs']) cell(row, ms(w.t && w.t[k]));
    },
  );
  fill($('faults'), [...job.faults].reverse(), (row, f) => {
    cell(row, new Date(f.at).toLocaleTimeString());
    cell(row, String(f.inStep ?? f.step + 1));
    cell(row, f.kind || '');
    cell(row, String(f.resumedAt ?? ''));
    cell(row, String(f.stepsLost ?? ''));
    cell(row, f.reason);
  });
}

// The shared pool: each queue as of the scheduler's last decision, and the sweeps with their trials.
async function renderPool() {
  const [q, sweeps] = await Promise.all([api('GET', '/v1/queues'), api('GET', '/v1/sweeps')]);
  $('queue-caption').textContent = q.blocked ? `(waiting at the head of the line: ${q.blocked})` : '';
  fill($('queues'), q.queues, (row, x) => {
    cell(row, x.name);
    cell(row, String(x.nominalRanks));
    cell(row, String(x.weight));
    cell(row, String(x.runningRanks));
    cell(row, String(x.borrowedRanks));
    cell(row, pct(x.share));
    cell(row, String(x.runningJobs));
    cell(row, String(x.pendingJobs));
  });
  if (!selectedSweep && sweeps.length) selectedSweep = sweeps[0].id;
  fill($('sweeps'), sweeps, (row, s) => {
    const count = (state) => s.trials.filter((t) => t.state === state).length;
    cell(row, s.name ? `${s.name} (${s.id})` : s.id);
    cell(row, s.state, `state ${s.state}`);
    cell(
      row,
      `${s.trials.length}/${s.budget.maxTrials}: ${count('running')} / ${count('completed')} / ${count('stopped')} / ${count('failed')}`,
    );
    cell(row, `${s.objective.metric} (${s.objective.goal})`);
    cell(row, s.best ? `★ trial ${s.best.trial}: ${num(s.best.score, 4)} at step ${s.best.step}` : '–', s.best ? 'best' : '');
    row.className = `sweep${s.id === selectedSweep ? ' selected' : ''}`;
    row.dataset.sweep = s.id;
    row.addEventListener('click', () => {
      selectedSweep = s.id;
      refresh();
    });
  });
  const sweep = sweeps.find((s) => s.id === selectedSweep);
  $('sweep-detail').hidden = !sweep;
  if (sweep) renderSweep(sweep);
}

const TRIAL_COLORS = ['#1f6feb', '#d9480f', '#2b8a3e', '#862e9c', '#c92a2a', '#0b7285', '#5c940d', '#e67700'];

/** A sweep's trials: each one's score at its 1st, 2nd, ... evaluation, stopped ones marked where they ended. */
function renderSweep(sweep) {
  $('sweep-caption').textContent = `${sweep.name || sweep.id}: ${sweep.objective.metric} (${sweep.objective.goal}) per evaluation`;
  const series = sweep.trials
    .filter((t) => t.scores.length)
    .map((t) => ({
      label: `#${t.index}${t.state === 'stopped' ? ' stopped' : ''}`,
      color: TRIAL_COLORS[t.index % TRIAL_COLORS.length],
      points: t.scores.map((v, k) => [k + 1, v]),
      marks: t.state === 'stopped' ? [[t.scores.length, t.scores[t.scores.length - 1]]] : [],
    }));
  chart($('sweep-chart'), series, 'evaluation');
  fill($('sweep-trials'), sweep.trials, (row, t) => {
    row.dataset.trial = String(t.index);
    cell(row, `#${t.index}`);
    cell(row, t.state, `state ${t.state}`);
    // Three significant digits: a learning rate of 1e-5 is not 0.0000.
    cell(
      row,
      Object.entries(t.params)
        .map(([k, v]) => `${k} = ${typeof v === 'number' ? Number(v.toPrecision(3)) : JSON.stringify(v)}`)
        .join(', '),
    );
    cell(row, t.best ? `${num(t.best.score, 4)} (step ${t.best.step})` : '–', sweep.best && sweep.best.trial === t.index ? 'best' : '');
    cell(row, t.scores.map((v) => num(v, 3)).join(' '));
    cell(row, t.stopReason || t.error || '', 'muted');
  });
}

async function refresh() {
  try {
    const health = await fetch('/healthz').then((r) => r.json());
    $('health').textContent = health.ok ? 'coordinator healthy' : `coordinator stopped: ${health.error}`;
    $('health').classList.toggle('bad', !health.ok);
    // The newest 50 jobs (the API pages; `facenet jobs list --cursor` reaches older ones).
    const jobs = await api('GET', '/v1/jobs?limit=50');
    if (!selected && jobs.length) selected = jobs[0].id;
    fill($('jobs'), jobs, (row, j) => {
      row.className = `job${j.id === selected ? ' selected' : ''}`;
      row.dataset.job = j.id;
      row.addEventListener('click', () => {
        selected = j.id;
        refresh();
      });
      cell(row, j.name ? `${j.name} (${j.id})` : j.id);
      cell(row, j.priority ? `${j.queue} (priority ${j.priority})` : j.queue);
      cell(row, j.requested ? `${j.state} (${j.requested} asked)` : j.state, `state ${j.state}`);
      const bar = document.createElement('span');
      bar.className = 'bar';
      bar.innerHTML = `<span style="width:${((100 * j.step) / Math.max(1, j.steps)).toFixed(1)}%"></span>`;
      const prog = document.createElement('span');
      prog.append(bar, ` ${j.step}/${j.steps}`);
      cell(row, prog);
      cell(row, num(j.loss, 4));
      cell(row, num(j.imagesPerSecond, 1));
      cell(row, String(j.world.size));
      cell(row, j.evaluation.latest ? `${pct(j.evaluation.latest.val)} (step ${j.evaluation.latest.step})` : '–');
      cell(
        row,
        j.evaluation.best ? `★ step ${j.evaluation.best.step}: VAL ${pct(j.evaluation.best.val)}` : '–',
        j.evaluation.best ? 'best' : '',
      );
      const actions = document.createElement('span');
      if (j.state === 'running' && !j.requested) actions.append(button('pause', 'pause', j));
      if (j.state === 'paused' || (j.state === 'running' && j.requested === 'pause')) actions.append(button('resume', 'resume', j));
      if (!['completed', 'failed', 'cancelled'].includes(j.state)) actions.append(' ', button('cancel', 'cancel', j));
      cell(row, actions);
    });
    await renderPool();
    const job = jobs.find((j) => j.id === selected);
    if (job) await renderDetail(job);
    $('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    $('health').textContent = `cannot reach the API: ${err.message}`;
    $('health').classList.add('bad');
  }
}

refresh();
setInterval(refresh, 2000);
