import './style.css';
import { ApiError, canI, get, getText, request, setCSRFToken, setUnauthorizedHandler } from './api';
import type { LogList, VertexDetails, AggregatedMetric, AuthInfo, BackPressure, CheckpointStats, JobDetails, JobExceptions, JobPlan, JobSummary, LoginAnswer, Overview, TaskManager } from './api';
import { h, table, fmtTime, fmtDuration, stateBadge } from './dom';
import { drawPlan, fmtBytes, fmtCount } from './graph';
import type { VertexLive } from './graph';

const main = document.getElementById('main') as HTMLElement;
const nav = document.getElementById('nav') as HTMLElement;
const badge = document.getElementById('whoami') as HTMLElement;

let auth: AuthInfo | null = null;
const allowed: Record<string, boolean> = {};
// Each view's timers; a new view stops the old one's.
let timers: number[] = [];
let generation = 0;

function every(ms: number, f: () => Promise<void> | void): void {
  const gen = generation;
  let running = false;
  const tick = async () => {
    if (gen !== generation || running) return;
    running = true;
    try {
      await f();
    } finally {
      running = false;
    }
  };
  void tick();
  timers.push(window.setInterval(tick, ms));
}

function show(...nodes: (Node | string)[]): void {
  main.replaceChildren(...nodes);
}

function errorBox(e: unknown): HTMLElement {
  const msg = e instanceof ApiError ? `${e.status}: ${e.message}` : String(e);
  return h('p', { class: 'error', 'data-testid': 'error' }, msg);
}

// --- Identity ---

// ended says why the page shows its login again (a session that ended).
let ended = '';

async function loadAuth(): Promise<void> {
  try {
    auth = await get<AuthInfo>('auth/info');
  } catch (e) {
    // A session cookie the server no longer knows (expired, logged out
    // elsewhere, its token revoked): only listeners with the token login
    // have sessions, so offer it again.
    if (!(e instanceof ApiError) || e.status !== 401) throw e;
    ended = e.message;
    auth = { listener: '', tls: true, methods: ['token'], login: true, authenticated: false };
  }
  if (!auth.authenticated && auth.methods.includes('kerberos')) {
    // SPNEGO: a browser sends its Kerberos ticket only when challenged,
    // and /auth/info challenges nobody. /whoami does.
    try {
      const u = await get<{ username: string; groups: string[]; method: string }>('whoami');
      auth = { ...auth, authenticated: true, user: { username: u.username, groups: u.groups, method: u.method } };
    } catch {
      // no ticket, or the browser is not set up for this host: the login
      // page says what the listener accepts
    }
  }
  setCSRFToken(auth.session?.['csrf-token'] ?? '');
  const checks: [string, string, string][] = [
    ['logs', 'view', 'logs'],
    ['config', 'view', 'config'],
    ['submit', 'submit', 'jobs'],
    ['taskmanagers', 'view', 'taskmanagers'],
  ];
  for (const k of Object.keys(allowed)) delete allowed[k];
  if (auth.authenticated) {
    await Promise.all(checks.map(async ([key, verb, res]) => (allowed[key] = await canI(verb, res))));
  }
  renderChrome();
}

function renderChrome(): void {
  const links: [string, string, boolean][] = [
    ['#/', 'Overview', true],
    ['#/jobs', 'Jobs', true],
    ['#/taskmanagers', 'TaskManagers', allowed.taskmanagers],
    ['#/config', 'Configuration', allowed.config],
    ['#/log', 'JobManager log', allowed.logs],
    ['#/submit', 'Submit', allowed.submit],
  ];
  nav.replaceChildren(...(auth?.authenticated ? links.filter((l) => l[2]).map(([href, label]) => h('a', { href }, label)) : []));
  const u = auth?.user;
  if (!auth || !u) {
    badge.replaceChildren(h('span', { class: 'muted' }, 'not logged in'));
    return;
  }
  const how = auth.session ? `${u.method} session` : u.method;
  const parts: Node[] = [
    h('span', { class: 'user', 'data-testid': 'username', title: u.groups.length ? `groups: ${u.groups.join(', ')}` : 'no groups' }, u.username),
    h('span', { class: 'method', 'data-testid': 'auth-method' }, how),
  ];
  if (auth.session) parts.push(h('button', { class: 'link', 'data-testid': 'logout', onclick: logout }, 'Log out'));
  else if (u.method === 'anonymous' && auth.login) parts.push(h('a', { href: '#/login', 'data-testid': 'login-link' }, 'Log in'));
  badge.replaceChildren(...parts);
}

async function logout(): Promise<void> {
  try {
    await request('POST', 'auth/logout');
  } finally {
    setCSRFToken('');
    await loadAuth();
    location.hash = '#/';
    route();
  }
}

function loginView(): void {
  if (!auth?.login) {
    show(
      h('section', { class: 'notice', 'data-testid': 'no-login' },
        h('h1', {}, 'No login on this listener'),
        h('p', {}, auth?.['login-unavailable-reason'] ?? ''),
        h('p', { class: 'muted' }, `Methods accepted here: ${(auth?.methods ?? []).join(', ')}. Client certificates and Kerberos (SPNEGO) work without a login when the browser has them.`)),
    );
    return;
  }
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', spellcheck: 'false', required: true, 'data-testid': 'token-input' });
  const status = h('p', { class: 'status' });
  const form = h('form', { class: 'login', 'data-testid': 'login-form' },
    h('h1', {}, 'Log in to sluice'),
    ended ? h('p', { class: 'notice', 'data-testid': 'session-ended' }, ended) : '',
    h('label', { for: 'token' }, 'Bearer token'),
    input,
    h('button', { type: 'submit', 'data-testid': 'login-submit' }, 'Log in'),
    status,
    h('p', { class: 'muted' }, 'The token is exchanged for a session and not kept by the browser. Client certificates and Kerberos need no login.'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const token = input.value.trim();
    input.value = '';
    status.textContent = 'Logging in…';
    try {
      const ans = await request<LoginAnswer>('POST', 'auth/login', { headers: { Authorization: `Bearer ${token}` } });
      setCSRFToken(ans['csrf-token']);
      ended = '';
      await loadAuth();
      location.hash = '#/';
      route();
    } catch (e) {
      status.replaceChildren(errorBox(e));
    }
  });
  show(form);
  input.focus();
}

// --- Views ---

async function overviewView(): Promise<void> {
  const cards = h('div', { class: 'cards', 'data-testid': 'overview' });
  const jobs = h('div');
  show(h('h1', {}, 'Cluster overview'), plaintextNotice(), cards, h('h2', {}, 'Jobs'), jobs);
  every(3000, async () => {
    try {
      const o = await get<Overview>('overview');
      cards.replaceChildren(
        card('TaskManagers', o.taskmanagers), card('Slots', `${o['slots-available']} free of ${o['slots-total']}`),
        card('Running jobs', o['jobs-running']), card('Finished', o['jobs-finished']), card('Cancelled', o['jobs-cancelled']),
        card('Failed', o['jobs-failed']), card('Version', o['sluice-version']));
    } catch (e) {
      cards.replaceChildren(errorBox(e));
    }
    await fillJobs(jobs);
  });
}

function plaintextNotice(): Node | string {
  if (!auth || auth.login || !auth['login-unavailable-reason']) return '';
  return h('p', { class: 'notice', 'data-testid': 'login-unavailable' }, `No login here: ${auth['login-unavailable-reason']}.`);
}

function card(label: string, value: string | number): HTMLElement {
  return h('div', { class: 'card' }, h('div', { class: 'card-value' }, value), h('div', { class: 'card-label' }, label));
}

async function fillJobs(el: HTMLElement): Promise<void> {
  try {
    const { jobs } = await get<{ jobs: JobSummary[] }>('jobs/overview');
    el.replaceChildren(jobs.length === 0 ? h('p', { class: 'muted' }, 'No jobs you may see.') : table(
      ['Name', 'State', 'Started', 'Duration', 'Tasks', 'Id'],
      jobs.map((j) => [h('a', { href: `#/jobs/${j.jid}`, 'data-testid': 'job-link' }, j.name), stateBadge(j.state), fmtTime(j['start-time']), fmtDuration(j.duration), `${j.tasks.running ?? 0}/${j.tasks.total ?? 0} running`, h('code', {}, j.jid)]),
      { 'data-testid': 'job-list' }));
  } catch (e) {
    el.replaceChildren(errorBox(e));
  }
}

async function jobsView(): Promise<void> {
  const jobs = h('div');
  show(h('h1', {}, 'Jobs'), jobs);
  every(3000, () => fillJobs(jobs));
}

async function jobView(id: string): Promise<void> {
  const header = h('div', { class: 'job-header' });
  const actions = h('div', { class: 'actions', 'data-testid': 'job-actions' });
  const graph = h('div', { class: 'graph', 'data-testid': 'job-graph' });
  const vertices = h('div');
  const vertexPanel = h('div', { 'data-testid': 'vertex-detail' });
  const checkpoints = h('div', { 'data-testid': 'checkpoints' });
  const exceptions = h('div', { 'data-testid': 'exceptions' });
  show(header, actions, h('h2', {}, 'Dataflow'), graph, vertices, vertexPanel, h('h2', {}, 'Checkpoints'), checkpoints, h('h2', {}, 'Exceptions'), exceptions);
  const enc = encodeURIComponent(id);
  const [mayCancel, maySavepoint] = await Promise.all([canI('cancel', `job/${id}`), canI('savepoint', `job/${id}`)]);
  let planKey = '';
  let update: ((live: Map<string, VertexLive>) => void) | null = null;
  let state = '';
  let tick = 0;
  let selected = '';
  const bps = new Map<string, BackPressure>();
  const showVertex = async () => {
    if (!selected) return;
    try {
      const v = await get<VertexDetails>(`jobs/${enc}/vertices/${encodeURIComponent(selected)}`);
      const bp = bps.get(selected);
      vertexPanel.replaceChildren(h('h2', {}, `Vertex ${v.name}`), table(['Subtask', 'Status', 'TaskManager', 'Records in', 'Records out', 'Bytes in', 'Bytes out', 'Back-pressure', 'Busy'],
        v.subtasks.map((st) => {
          const b = bp?.subtasks?.find((x) => x.subtask === st.subtask);
          return [st.subtask, stateBadge(st.status), h('a', { href: `#/taskmanagers/${st['taskmanager-id']}` }, st['taskmanager-id']),
            fmtCount(st.metrics['read-records']), fmtCount(st.metrics['write-records']), fmtBytes(st.metrics['read-bytes']), fmtBytes(st.metrics['write-bytes']),
            b ? `${b.backpressureLevel} (${Math.round(b.ratio * 100)}%)` : '–', b?.busyRatio !== undefined ? `${Math.round(b.busyRatio * 100)}%` : '–'];
        }), { 'data-testid': 'subtask-table' }));
    } catch (e) {
      vertexPanel.replaceChildren(errorBox(e));
    }
  };
  const select = (id: string) => {
    selected = id;
    void showVertex();
  };
  every(2000, async () => {
    let d: JobDetails;
    try {
      d = await get<JobDetails>(`jobs/${enc}`);
    } catch (e) {
      header.replaceChildren(errorBox(e));
      return;
    }
    header.replaceChildren(h('h1', {}, d.name, ' ', stateBadge(d.state)),
      h('p', { class: 'muted' }, `id ${d.jid} · started ${fmtTime(d['start-time'])} · ${fmtDuration(d.duration)}${d.owner ? ` · owner ${d.owner}` : ''}`),
      d['failure-cause'] ? h('p', { class: 'error' }, d['failure-cause']) : '');
    if (d.state !== state) {
      state = d.state;
      renderActions(actions, id, d.state, mayCancel, maySavepoint);
    }
    const key = d.vertices.map((v) => v.id).join(',');
    if (key !== planKey) {
      try {
        const p = await get<JobPlan>(`jobs/${enc}/plan`);
        update = drawPlan(graph, p.plan.nodes, select);
        planKey = key;
      } catch (e) {
        graph.replaceChildren(errorBox(e));
      }
    }
    const running = d.state === 'RUNNING';
    const live = new Map<string, VertexLive>();
    await Promise.all(d.vertices.map(async (v) => {
      const l: VertexLive = { recordsIn: v.metrics['read-records'], recordsOut: v.metrics['write-records'], bytesIn: v.metrics['read-bytes'], bytesOut: v.metrics['write-bytes'], status: v.status };
      if (running) {
        const vid = encodeURIComponent(v.id);
        const [bp, wm] = await Promise.all([
          get<BackPressure>(`jobs/${enc}/vertices/${vid}/backpressure`).catch(() => null),
          get<AggregatedMetric[]>(`jobs/${enc}/vertices/${vid}/subtasks/metrics?get=currentInputWatermark&agg=min`).catch(() => null),
        ]);
        if (bp) bps.set(v.id, bp);
        if (bp?.backpressureLevel) l.backpressure = bp.backpressureLevel;
        const w = wm?.find((m) => m.id === 'currentInputWatermark');
        if (w?.min !== undefined && w.min > 0 && w.min < 8.64e15) l.watermark = fmtTime(w.min);
      }
      live.set(v.id, l);
    }));
    update?.(live);
    await showVertex();
    vertices.replaceChildren(table(['Vertex', 'Parallelism', 'Status', 'Records in', 'Records out', 'Bytes in', 'Bytes out', 'Back-pressure', 'Watermark'],
      d.vertices.map((v) => {
        const l = live.get(v.id)!;
        return [v.name, v.parallelism, stateBadge(v.status), fmtCount(l.recordsIn), fmtCount(l.recordsOut), fmtBytes(l.bytesIn), fmtBytes(l.bytesOut), l.backpressure ?? '–', l.watermark ?? '–'];
      }), { 'data-testid': 'vertex-table' }));
    if (tick++ % 3 === 0) {
      await Promise.all([fillCheckpoints(checkpoints, enc), fillExceptions(exceptions, enc)]);
    }
  });
}

function renderActions(el: HTMLElement, id: string, state: string, mayCancel: boolean, maySavepoint: boolean): void {
  const active = !['FINISHED', 'CANCELED', 'CANCELLED', 'FAILED'].includes(state);
  const status = h('span', { class: 'status', 'data-testid': 'action-status' });
  const items: Node[] = [];
  const enc = encodeURIComponent(id);
  if (active && mayCancel) {
    const btn = h('button', { class: 'danger', 'data-testid': 'cancel-job' }, 'Cancel job');
    btn.addEventListener('click', async () => {
      if (btn.dataset.armed !== 'yes') {
        btn.dataset.armed = 'yes';
        btn.textContent = 'Confirm cancel';
        return;
      }
      btn.disabled = true;
      try {
        await request('PATCH', `jobs/${enc}?mode=cancel`);
        status.textContent = 'Cancelling…';
      } catch (e) {
        status.replaceChildren(errorBox(e));
        btn.disabled = false;
      }
    });
    items.push(btn);
  }
  if (active && maySavepoint) {
    const dir = h('input', { type: 'text', placeholder: 'target directory (optional)', 'data-testid': 'savepoint-dir' });
    const drain = h('input', { type: 'checkbox', id: 'drain' });
    const btn = h('button', { 'data-testid': 'stop-job' }, 'Stop with savepoint');
    btn.addEventListener('click', async () => {
      btn.disabled = true;
      try {
        const body: Record<string, unknown> = { drain: drain.checked };
        if (dir.value.trim()) body.targetDirectory = dir.value.trim();
        const r = await request<{ 'request-id': string }>('POST', `jobs/${enc}/stop`, { json: body });
        status.textContent = `Stopping with savepoint (request ${r['request-id']})…`;
      } catch (e) {
        status.replaceChildren(errorBox(e));
        btn.disabled = false;
      }
    });
    items.push(h('span', { class: 'stop' }, dir, h('label', { for: 'drain' }, drain, ' drain'), btn));
  }
  el.replaceChildren(...items, status);
}

async function fillCheckpoints(el: HTMLElement, enc: string): Promise<void> {
  try {
    const c = await get<CheckpointStats>(`jobs/${enc}/checkpoints`);
    const l = c.latest?.completed;
    el.replaceChildren(h('p', {}, `completed ${c.counts.completed} · in progress ${c.counts.in_progress} · failed ${c.counts.failed} · restored ${c.counts.restored}`),
      l ? h('p', { class: 'muted' }, `latest: #${l.id} at ${fmtTime(l.trigger_timestamp)}, ${fmtDuration(l.end_to_end_duration)}, ${fmtBytes(l.state_size)}`) : '');
  } catch (e) {
    el.replaceChildren(errorBox(e));
  }
}

async function fillExceptions(el: HTMLElement, enc: string): Promise<void> {
  try {
    const x = await get<JobExceptions>(`jobs/${enc}/exceptions`);
    const entries = x.exceptionHistory?.entries ?? [];
    if (!x['root-exception'] && entries.length === 0) {
      el.replaceChildren(h('p', { class: 'muted' }, 'No exceptions.'));
      return;
    }
    el.replaceChildren(
      x['root-exception'] ? h('pre', { class: 'exception' }, x['root-exception']) : '',
      ...entries.map((e) => h('details', {}, h('summary', {}, `${fmtTime(e.timestamp)} ${e.taskName ?? ''} ${e.exceptionName}`), h('pre', {}, e.stacktrace))));
  } catch (e) {
    el.replaceChildren(errorBox(e));
  }
}

async function taskmanagersView(): Promise<void> {
  const el = h('div');
  show(h('h1', {}, 'TaskManagers'), el);
  every(3000, async () => {
    try {
      const { taskmanagers } = await get<{ taskmanagers: TaskManager[] }>('taskmanagers');
      el.replaceChildren(table(['Id', 'Host', 'Data port', 'Slots', 'Free slots', 'Last heartbeat'],
        taskmanagers.map((t) => [h('a', { href: `#/taskmanagers/${t.id}` }, t.id), t.hostname ?? '', t.dataPort ?? t.dataAddress ?? '', t.slotsNumber, t.freeSlots, `${t.timeSinceLastHeartbeat ?? '–'} ms ago`]),
        { 'data-testid': 'tm-list' }));
    } catch (e) {
      el.replaceChildren(errorBox(e));
    }
  });
}

async function taskmanagerView(id: string): Promise<void> {
  const el = h('div', { 'data-testid': 'tm-detail' });
  const logs = h('div', { 'data-testid': 'tm-logs' });
  show(h('h1', {}, `TaskManager ${id}`), el, allowed.logs ? h('h2', {}, 'Log files') : '', logs);
  if (allowed.logs) void logFiles(logs, `taskmanagers/${encodeURIComponent(id)}/logs`);
  every(3000, async () => {
    try {
      const t = await get<TaskManager>(`taskmanagers/${encodeURIComponent(id)}`);
      const rows: [string, unknown][] = [['Id', t.id], ['Address', t.path], ['Data port', t.dataPort], ['Slots', t.slotsNumber], ['Free slots', t.freeSlots], ['Last heartbeat', `${t.timeSinceLastHeartbeat} ms ago`]];
      for (const [k, v] of Object.entries(t.hardware ?? {})) rows.push([`hardware ${k}`, v]);
      el.replaceChildren(table(['Field', 'Value'], rows.map(([k, v]) => [k, v === undefined ? '–' : String(v)])));
    } catch (e) {
      el.replaceChildren(errorBox(e));
    }
  });
}

async function configView(): Promise<void> {
  const el = h('div');
  show(h('h1', {}, 'JobManager configuration'), h('p', { class: 'muted' }, 'Sensitive values (passwords, secrets, tokens) are masked by the server.'), el);
  try {
    const kvs = await get<{ key: string; value: string }[]>('jobmanager/config');
    el.replaceChildren(table(['Key', 'Value'], kvs.map((kv) => [h('code', {}, kv.key), kv.value]), { 'data-testid': 'config-table' }));
  } catch (e) {
    el.replaceChildren(errorBox(e));
  }
}

/** logFiles lists a process's log files (env.log.dir) and shows one on a click. */
async function logFiles(el: HTMLElement, base: string): Promise<void> {
  try {
    const { logs } = await get<LogList>(base);
    if (logs.length === 0) {
      el.replaceChildren(h('p', { class: 'muted' }, 'No log files (env.log.dir is not set).'));
      return;
    }
    const view = h('pre', { class: 'log', 'data-testid': 'log-file' });
    el.replaceChildren(table(['File', 'Size', 'Modified'], logs.map((l) => {
      const a = h('button', { class: 'link', 'data-testid': 'log-file-link' }, l.name);
      a.addEventListener('click', async () => {
        try {
          view.textContent = await getText(`${base}/${encodeURIComponent(l.name)}`);
        } catch (e) {
          view.replaceChildren(errorBox(e));
        }
      });
      return [a, fmtBytes(l.size), fmtTime(l.mtime)];
    })), view);
  } catch (e) {
    el.replaceChildren(errorBox(e));
  }
}

async function logView(): Promise<void> {
  const pre = h('pre', { class: 'log', 'data-testid': 'jm-log' });
  const files = h('div', { 'data-testid': 'jm-logs' });
  show(h('h1', {}, 'JobManager log'), pre, h('h2', {}, 'Log files'), files);
  void logFiles(files, 'jobmanager/logs');
  every(5000, async () => {
    try {
      const { lines } = await get<{ lines: string[] }>('jobmanager/log?lines=500');
      pre.textContent = lines.join('\n');
    } catch (e) {
      pre.replaceChildren(errorBox(e));
    }
  });
}

function submitView(): void {
  const spec = h('input', { type: 'file', id: 'spec', accept: '.yaml,.yml', required: true, 'data-testid': 'submit-spec' });
  const params = h('textarea', { id: 'params', rows: 4, placeholder: 'key=value, one per line', 'data-testid': 'submit-params' });
  const par = h('input', { type: 'number', id: 'parallelism', min: 1, placeholder: 'default', 'data-testid': 'submit-parallelism' });
  const status = h('div', { class: 'status', 'data-testid': 'submit-status' });
  const form = h('form', { class: 'submit' },
    h('label', { for: 'spec' }, 'Job spec (YAML)'), spec,
    h('label', { for: 'params' }, 'Parameters'), params,
    h('label', { for: 'parallelism' }, 'Parallelism'), par,
    h('button', { type: 'submit', 'data-testid': 'submit-job' }, 'Submit'), status);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const file = spec.files?.[0];
    if (!file) return;
    const p: Record<string, string> = {};
    for (const line of params.value.split('\n')) {
      const t = line.trim();
      if (!t) continue;
      const i = t.indexOf('=');
      if (i <= 0) {
        status.replaceChildren(errorBox(`parameter line "${t}": want key=value`));
        return;
      }
      p[t.slice(0, i).trim()] = t.slice(i + 1).trim();
    }
    const fd = new FormData();
    fd.append('spec', file, file.name);
    fd.append('parameters', JSON.stringify(p));
    if (par.value) fd.append('parallelism', par.value);
    try {
      const r = await request<{ jobid: string; warnings?: string[] }>('POST', 'jobs', { body: fd });
      status.replaceChildren(h('p', {}, 'Submitted: ', h('a', { href: `#/jobs/${r.jobid}` }, r.jobid)), ...(r.warnings ?? []).map((w) => h('p', { class: 'muted' }, w)));
    } catch (e) {
      status.replaceChildren(errorBox(e));
    }
  });
  show(h('h1', {}, 'Submit a job'), form);
}

// --- Router ---

function route(): void {
  generation++;
  for (const t of timers) clearInterval(t);
  timers = [];
  const path = location.hash.replace(/^#/, '') || '/';
  if (!auth?.authenticated || path === '/login') {
    loginView();
    return;
  }
  const parts = path.split('/').filter(Boolean);
  if (parts.length === 0) void overviewView();
  else if (parts[0] === 'jobs' && parts[1]) void jobView(decodeURIComponent(parts[1]));
  else if (parts[0] === 'jobs') void jobsView();
  else if (parts[0] === 'taskmanagers' && parts[1]) void taskmanagerView(decodeURIComponent(parts[1]));
  else if (parts[0] === 'taskmanagers') void taskmanagersView();
  else if (parts[0] === 'config') void configView();
  else if (parts[0] === 'log') void logView();
  else if (parts[0] === 'submit') submitView();
  else show(h('p', {}, 'No such page.'));
}

setUnauthorizedHandler((e) => {
  if (!auth?.authenticated) return;
  ended = e.message;
  auth = { ...auth, authenticated: false, session: undefined };
  setCSRFToken('');
  renderChrome();
  route();
});

window.addEventListener('hashchange', route);
loadAuth().then(route, (e) => show(errorBox(e)));
