// The REST API, asked with relative URLs: the page is served at the API's
// root (/, rest.base-path, or a proxy's prefix), so 'jobs' is the API's
// /jobs wherever that is. The browser sends the credential by itself (a
// client certificate, a Kerberos ticket, or the session cookie, which the
// page's script cannot read); the script keeps only the session's CSRF
// token, in memory, and sends it on every state-changing request.

let csrfToken = '';

/** setCSRFToken remembers the session's CSRF token ('' when there is none). */
export function setCSRFToken(t: string): void {
  csrfToken = t;
}

let onUnauthorized: ((e: ApiError) => void) | null = null;

/**
 * setUnauthorizedHandler sets what happens when the server answers 401 to
 * a request of a logged-in page (the session ended or was revoked): the
 * page shows its login again.
 */
export function setUnauthorizedHandler(f: (e: ApiError) => void): void {
  onUnauthorized = f;
}

/** ApiError is a non-2xx answer, with the server's {"errors": [...]} text. */
export class ApiError extends Error {
  constructor(public status: number, message: string) {
    super(message);
  }
}

async function errorOf(resp: Response): Promise<ApiError> {
  let msg = `${resp.status} ${resp.statusText}`;
  try {
    const body = await resp.json();
    if (body && Array.isArray(body.errors)) msg = body.errors.join('; ');
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(resp.status, msg);
}

/** request sends one API request and returns its JSON answer. */
export async function request<T>(method: string, path: string, init: { body?: BodyInit; json?: unknown; headers?: Record<string, string> } = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json', ...(init.headers || {}) };
  let body = init.body;
  if (init.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(init.json);
  }
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  const resp = await fetch(path, { method, headers, body, credentials: 'same-origin', cache: 'no-store', redirect: 'error' });
  if (!resp.ok) {
    const err = await errorOf(resp);
    if (resp.status === 401 && onUnauthorized && !path.startsWith('auth/')) onUnauthorized(err);
    throw err;
  }
  const text = await resp.text();
  return (text ? JSON.parse(text) : {}) as T;
}

export const get = <T>(path: string) => request<T>('GET', path);

/** getText fetches a text answer (a log file). */
export async function getText(path: string): Promise<string> {
  const resp = await fetch(path, { headers: { Accept: 'text/plain' }, credentials: 'same-origin', cache: 'no-store', redirect: 'error' });
  if (!resp.ok) {
    const err = await errorOf(resp);
    if (resp.status === 401 && onUnauthorized) onUnauthorized(err);
    throw err;
  }
  return resp.text();
}

/** LogList is Flink's log file list (GET /jobmanager/logs, /taskmanagers/:id/logs). */
export interface LogList {
  logs: { name: string; size: number; mtime?: number }[];
}

// --- Shapes (Flink's REST API field names where Flink has the path) ---

export interface AuthInfo {
  listener: string;
  tls: boolean;
  methods: string[];
  login: boolean;
  'login-unavailable-reason'?: string;
  authenticated: boolean;
  user?: { username: string; groups: string[]; method: string };
  session?: { 'csrf-token': string; expires: number; 'idle-timeout': number };
}

export interface LoginAnswer {
  user: { username: string; groups: string[]; method: string };
  'csrf-token': string;
  expires: number;
}

export interface Overview {
  'sluice-version': string;
  'cluster-id'?: string;
  taskmanagers: number;
  'slots-total': number;
  'slots-available': number;
  'jobs-running': number;
  'jobs-finished': number;
  'jobs-cancelled': number;
  'jobs-failed': number;
}

export interface JobSummary {
  jid: string;
  name: string;
  state: string;
  'start-time': number;
  'end-time': number;
  duration: number;
  tasks: Record<string, number>;
}

export interface VertexMetrics {
  'read-bytes': number;
  'write-bytes': number;
  'read-records': number;
  'write-records': number;
  'accumulated-backpressured-time'?: number;
}

export interface JobVertex {
  id: string;
  name: string;
  parallelism: number;
  status: string;
  metrics: VertexMetrics;
}

export interface JobDetails {
  jid: string;
  name: string;
  state: string;
  'start-time': number;
  duration: number;
  vertices: JobVertex[];
  owner?: string;
  'failure-cause'?: string;
}

/** PlanNode is a node of Flink's JobPlanInfo (GET /jobs/:jobid/plan). */
export interface PlanNode {
  id: string;
  parallelism: number;
  operator: string;
  operator_strategy?: string;
  description: string;
  inputs?: { num: number; id: string; ship_strategy: string; exchange?: string }[];
}

export interface JobPlan {
  plan: { jid: string; name: string; nodes: PlanNode[] };
}

/** VertexDetails is Flink's JobVertexDetailsInfo (GET /jobs/:jobid/vertices/:vertexid). */
export interface VertexDetails {
  id: string;
  name: string;
  parallelism: number;
  subtasks: { subtask: number; status: string; attempt: number; endpoint: string; duration: number; metrics: VertexMetrics; 'taskmanager-id': string }[];
}

/** BackPressure is Flink's JobVertexBackPressureInfo. */
export interface BackPressure {
  status: string;
  backpressureLevel?: string;
  'end-timestamp'?: number;
  subtasks?: { subtask: number; backpressureLevel: string; ratio: number; busyRatio?: number; idleRatio?: number }[];
}

/** AggregatedMetric is one entry of Flink's .../subtasks/metrics?get=...&agg=... */
export interface AggregatedMetric {
  id: string;
  min?: number;
  max?: number;
  avg?: number;
  sum?: number;
}

export interface CheckpointStats {
  counts: { total: number; in_progress: number; completed: number; failed: number; restored: number };
  latest: { completed?: { id: number; trigger_timestamp: number; end_to_end_duration: number; state_size: number; external_path?: string } | null };
}

export interface JobExceptions {
  'root-exception'?: string;
  timestamp?: number;
  exceptionHistory?: { entries: { exceptionName: string; stacktrace: string; timestamp: number; taskName?: string }[] };
}

export interface TaskManager {
  id: string;
  path?: string;
  dataPort?: number;
  dataAddress?: string;
  hostname?: string;
  slotsNumber: number;
  freeSlots: number;
  timeSinceLastHeartbeat?: number;
  hardware?: Record<string, number>;
}

/** canI asks the server whether the caller may do verb on resource. */
export async function canI(verb: string, resource: string): Promise<boolean> {
  try {
    const r = await request<{ allowed: boolean }>('POST', 'auth/can-i', { json: { verb, resource } });
    return r.allowed === true;
  } catch {
    return false;
  }
}
