/**
 * The inflow page: a form that POSTs entries, the latest entries with their live status, and a
 * load-balancing probe. Plain DOM, no framework. Every piece of data reaches the page through
 * textContent, never as markup.
 *
 * Live updates come from GET /api/events (Server-Sent Events fed by the queue's events). The
 * stream can miss events, so the list is also reconciled from the API (PostgreSQL) when the
 * stream (re)connects, when it reports dropped events, and every few seconds.
 */

type Status = 'queued' | 'processing' | 'persisted' | 'failed';

interface EntryView {
  id: string;
  status: Status;
  author: string | null;
  message: string | null;
  acceptedBy: string | null;
  persistedBy: string | null;
  createdAt: string | null;
  persistedAt: string | null;
  failedReason: string | null;
  /** Sent from this page. */
  mine: boolean;
  /** When this page last learnt something new about the entry (ms). */
  changedAt: number;
}

type EntryUpdate = Partial<Omit<EntryView, 'id' | 'mine' | 'changedAt'>> & { id: string };

interface ApiError {
  error?: { code?: string; message?: string; field?: string };
}

const LIST_SIZE = 20;
const BALANCE_REQUESTS = 30;
const RECONCILE_EVERY_MS = 10_000;
// An entry with no news for this long is checked against the API at the next reconciliation.
const STALE_AFTER_MS = 2_000;
const RANK: Record<Status, number> = { queued: 0, processing: 1, failed: 2, persisted: 3 };
const STATUSES = new Set<string>(Object.keys(RANK));

function element<T extends HTMLElement>(id: string, type: new () => T): T {
  const found = document.getElementById(id);
  if (!(found instanceof type)) throw new Error(`#${id} is missing`);
  return found;
}

const form = element('entry-form', HTMLFormElement);
const authorInput = element('author', HTMLInputElement);
const messageInput = element('message', HTMLTextAreaElement);
const submitButton = element('submit-button', HTMLButtonElement);
const formStatus = element('form-status', HTMLParagraphElement);
const formError = element('form-error', HTMLDivElement);
const messageCounter = element('message-counter', HTMLSpanElement);
const fieldErrors = {
  author: element('author-error', HTMLParagraphElement),
  message: element('message-error', HTMLParagraphElement),
};
const fieldInputs = { author: authorInput, message: messageInput };
const list = element('entry-list', HTMLOListElement);
const emptyNote = element('entries-empty', HTMLParagraphElement);
const summary = element('summary', HTMLParagraphElement);
const live = element('live', HTMLParagraphElement);
const liveText = element('live-text', HTMLSpanElement);
const balanceButton = element('balance-button', HTMLButtonElement);
const balanceStatus = element('balance-status', HTMLParagraphElement);
const balanceBars = element('balance-bars', HTMLUListElement);
const servedBy = element('served-by', HTMLSpanElement);

// ---------------------------------------------------------------------------------------------
// Small helpers

/** The same colour for the same instance everywhere on the page: web1, web2, web3 differ. */
function hueOf(instance: string): string {
  const digits = /(\d+)$/.exec(instance)?.[1];
  let n = digits === undefined ? 0 : Number(digits);
  if (digits === undefined) for (const char of instance) n = (n * 31 + (char.codePointAt(0) ?? 0)) % 997;
  return String(n % 6);
}

function instanceTag(instance: string): HTMLSpanElement {
  const tag = document.createElement('span');
  tag.className = 'instance-tag';
  tag.dataset['hue'] = hueOf(instance);
  tag.textContent = instance;
  return tag;
}

function textElement<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

/** UUID v7 ids start with the time of acceptance in milliseconds. */
function timeOfId(id: string): Date | undefined {
  const hex = id.replaceAll('-', '').slice(0, 12);
  const ms = Number.parseInt(hex, 16);
  return /^[0-9a-f]{12}$/i.test(hex) && id[14] === '7' ? new Date(ms) : undefined;
}

/** Characters as the API counts them (code points, not UTF-16 units). */
const codePoints = (text: string): number => Array.from(text).length;

function randomKey(): string {
  // crypto.randomUUID needs a secure context; getRandomValues works on plain http too.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `page-${Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')}`;
}

async function readJson(response: Response): Promise<unknown> {
  try {
    return await response.json();
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

const textOrNull = (value: unknown): string | null | undefined =>
  typeof value === 'string' ? value : value === null ? null : undefined;

/** Keeps the fields this page knows from an API object; anything else is ignored. */
function toUpdate(value: unknown, status?: Status): EntryUpdate | undefined {
  if (!isRecord(value) || typeof value['id'] !== 'string') return undefined;
  const update: EntryUpdate = { id: value['id'] };
  const rawStatus = status ?? value['status'];
  if (typeof rawStatus === 'string' && STATUSES.has(rawStatus)) update.status = rawStatus as Status;
  for (const key of ['author', 'message', 'acceptedBy', 'persistedBy', 'createdAt', 'persistedAt', 'failedReason'] as const) {
    const field = textOrNull(value[key]);
    if (field !== undefined) update[key] = field;
  }
  return update;
}

// ---------------------------------------------------------------------------------------------
// The entries model

const entries = new Map<string, EntryView>();

/**
 * Merges what a source says about an entry. The stream is ordered, so its word stands (a retry
 * goes back from processing to queued); a reconciliation may be older than the stream, so it
 * only moves an entry forward. Persisted is final either way.
 */
function merge(update: EntryUpdate, from: 'stream' | 'snapshot', mine = false): void {
  const current = entries.get(update.id);
  const next: EntryView = current ?? {
    id: update.id,
    status: 'queued',
    author: null,
    message: null,
    acceptedBy: null,
    persistedBy: null,
    createdAt: null,
    persistedAt: null,
    failedReason: null,
    mine,
    changedAt: Date.now(),
  };
  let changed = current === undefined;
  for (const key of ['author', 'message', 'acceptedBy', 'persistedBy', 'createdAt', 'persistedAt'] as const) {
    const value = update[key];
    if (typeof value === 'string' && value !== next[key]) {
      next[key] = value;
      changed = true;
    }
  }
  const status = update.status;
  if (status !== undefined && status !== next.status && next.status !== 'persisted') {
    if (current === undefined || from === 'stream' || RANK[status] > RANK[next.status]) {
      next.status = status;
      changed = true;
    }
  }
  if (next.status === 'failed' && typeof update.failedReason === 'string') next.failedReason = update.failedReason;
  if (next.status !== 'failed') next.failedReason = null;
  if (mine) next.mine = true;
  if (changed) next.changedAt = Date.now();
  entries.set(next.id, next);
}

/** The entries to show, newest first (ids are UUID v7: their order is the order of acceptance). */
function visibleEntries(): EntryView[] {
  return [...entries.values()]
    .filter((entry) => entry.author !== null || entry.message !== null)
    .sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
    .slice(0, LIST_SIZE);
}

/** Forgets what has scrolled out of the list, so the model stays small under heavy load. */
function prune(): void {
  if (entries.size <= LIST_SIZE * 2) return;
  const keep = new Set(visibleEntries().map((entry) => entry.id));
  for (const [id, entry] of entries) {
    // Updates without data for entries never shown are dropped too.
    if (!keep.has(id) && !(entry.mine && entry.status !== 'persisted')) entries.delete(id);
  }
}

// ---------------------------------------------------------------------------------------------
// Rendering (batched to one pass per animation frame)

const rows = new Map<string, HTMLLIElement>();
let renderQueued = false;

function scheduleRender(): void {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    render();
  });
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

function describeLatency(entry: EntryView): string | undefined {
  if (entry.persistedAt === null) return undefined;
  const accepted = entry.createdAt === null ? timeOfId(entry.id) : new Date(entry.createdAt);
  if (accepted === undefined) return undefined;
  const ms = new Date(entry.persistedAt).getTime() - accepted.getTime();
  if (!Number.isFinite(ms) || ms < 0) return undefined;
  return ms < 1_000 ? `${String(ms)} ms` : `${(ms / 1_000).toFixed(1)} s`;
}

function buildRow(entry: EntryView): HTMLLIElement {
  const row = document.createElement('li');
  row.className = 'entry';
  row.dataset['id'] = entry.id;
  row.dataset['status'] = entry.status;
  if (entry.mine) row.dataset['mine'] = 'true';

  const top = document.createElement('div');
  top.className = 'entry-top';
  top.append(textElement('span', 'entry-author', entry.author ?? '(unknown author)'));
  if (entry.mine) top.append(textElement('span', 'mine-tag', 'you'));
  const when = entry.createdAt === null ? timeOfId(entry.id) : new Date(entry.createdAt);
  if (when !== undefined && !Number.isNaN(when.getTime())) {
    const time = textElement('time', 'entry-time', timeFormat.format(when));
    time.dateTime = when.toISOString();
    top.append(time);
  }
  const badge = textElement('span', 'status-badge', entry.status);
  badge.dataset['status'] = entry.status;
  top.append(badge);
  row.append(top);

  row.append(textElement('p', 'entry-message', entry.message ?? ''));

  const path = document.createElement('p');
  path.className = 'entry-path';
  const accepted = document.createElement('span');
  accepted.className = 'hop';
  accepted.append('accepted by ', entry.acceptedBy === null ? textElement('span', 'pending', '?') : instanceTag(entry.acceptedBy));
  accepted.dataset['role'] = 'accepted-by';
  const persisted = document.createElement('span');
  persisted.className = 'hop';
  persisted.dataset['role'] = 'persisted-by';
  if (entry.persistedBy !== null) {
    persisted.append('persisted by ', instanceTag(entry.persistedBy));
    const latency = describeLatency(entry);
    if (latency !== undefined) persisted.append(textElement('span', 'latency', ` in ${latency}`));
  } else {
    persisted.append(textElement('span', 'pending', entry.status === 'failed' ? 'not persisted' : 'waiting for a worker…'));
  }
  path.append(accepted, textElement('span', 'arrow', ' → '), persisted);
  row.append(path);

  if (entry.status === 'failed') {
    row.append(textElement('p', 'entry-reason', `Failed: ${entry.failedReason ?? 'no reason given'}`));
  }
  return row;
}

/** What a row shows, to rebuild it only when that changed. */
const signatureOf = (entry: EntryView): string =>
  JSON.stringify([entry.status, entry.author, entry.message, entry.acceptedBy, entry.persistedBy, entry.persistedAt, entry.failedReason, entry.mine]);
const signatures = new WeakMap<HTMLLIElement, string>();

function render(): void {
  prune();
  const shown = visibleEntries();
  const wanted = new Set(shown.map((entry) => entry.id));
  for (const [id, row] of rows) {
    if (!wanted.has(id)) {
      row.remove();
      rows.delete(id);
    }
  }
  let previous: HTMLLIElement | undefined;
  for (const entry of shown) {
    let row = rows.get(entry.id);
    const signature = signatureOf(entry);
    if (row === undefined || signatures.get(row) !== signature) {
      const fresh = buildRow(entry);
      if (row === undefined && rows.size > 0) fresh.classList.add('entry-new');
      row?.replaceWith(fresh);
      row = fresh;
      rows.set(entry.id, row);
      signatures.set(row, signature);
    }
    const expectedPosition: ChildNode | null = previous === undefined ? list.firstChild : previous.nextSibling;
    if (expectedPosition !== row) list.insertBefore(row, expectedPosition);
    previous = row;
  }
  emptyNote.hidden = shown.length > 0;
  const counts = { queued: 0, processing: 0, persisted: 0, failed: 0 };
  for (const entry of shown) counts[entry.status] += 1;
  const inFlight = counts.queued + counts.processing;
  summary.textContent =
    shown.length === 0
      ? ''
      : `Showing the latest ${String(shown.length)}: ${String(counts.persisted)} persisted, ${String(inFlight)} in flight, ${String(counts.failed)} failed.`;
}

// ---------------------------------------------------------------------------------------------
// Reconciliation from the API (PostgreSQL, and the queue for entries not yet persisted)

let reconciling: Promise<void> | undefined;
let reconcileAgain = false;
let lastReconcileAt = 0;

function reconcile(): Promise<void> {
  if (reconciling !== undefined) {
    reconcileAgain = true;
    return reconciling;
  }
  reconciling = (async () => {
    try {
      lastReconcileAt = Date.now();
      const response = await fetch(`/api/entries?limit=${String(LIST_SIZE)}`, { cache: 'no-store' });
      const body = await readJson(response);
      const listed = new Set<string>();
      if (response.ok && isRecord(body) && Array.isArray(body['entries'])) {
        for (const item of body['entries']) {
          const update = toUpdate(item, 'persisted');
          if (update === undefined) continue;
          listed.add(update.id);
          merge(update, 'snapshot');
        }
      }
      // Entries still in flight that the stream said nothing about lately: ask for each.
      const now = Date.now();
      const stale = [...entries.values()]
        .filter((entry) => (entry.status === 'queued' || entry.status === 'processing') && !listed.has(entry.id) && now - entry.changedAt >= STALE_AFTER_MS)
        .sort((a, b) => Number(b.mine) - Number(a.mine) || a.changedAt - b.changedAt)
        .slice(0, 10);
      await Promise.all(
        stale.map(async (entry) => {
          const one = await fetch(`/api/entries/${encodeURIComponent(entry.id)}`, { cache: 'no-store' });
          const update = one.ok ? toUpdate(await readJson(one)) : undefined;
          if (update !== undefined) merge(update, 'snapshot');
          // Checked, even when nothing changed: not asked again before STALE_AFTER_MS.
          const checked = entries.get(entry.id);
          if (checked !== undefined) checked.changedAt = Date.now();
        }),
      );
      scheduleRender();
    } catch {
      // Offline or the API is down: the next reconciliation tries again.
    } finally {
      reconciling = undefined;
      if (reconcileAgain) {
        reconcileAgain = false;
        void reconcile();
      }
    }
  })();
  return reconciling;
}

setInterval(() => {
  if (!document.hidden) void reconcile();
}, RECONCILE_EVERY_MS);
document.addEventListener('visibilitychange', () => {
  if (!document.hidden) void reconcile();
});
window.addEventListener('online', () => void reconcile());

// ---------------------------------------------------------------------------------------------
// The live stream

let stream: EventSource | undefined;
let retryMs = 1_000;

function setLive(state: 'connecting' | 'live' | 'reconnecting' | 'offline', ...content: (string | Node)[]): void {
  live.dataset['state'] = state;
  liveText.replaceChildren(...content);
}

function connect(): void {
  stream?.close();
  setLive('connecting', 'Connecting…');
  const source = new EventSource('/api/events');
  stream = source;

  source.addEventListener('hello', (event) => {
    retryMs = 1_000;
    const data = safeParse(event.data);
    const instance = isRecord(data) && typeof data['instanceId'] === 'string' ? data['instanceId'] : 'unknown';
    setLive('live', 'Live · stream from ', instanceTag(instance));
    live.dataset['instance'] = instance;
    // Whatever happened while we were not listening: read it from the database.
    void reconcile();
  });

  source.addEventListener('entries', (event) => {
    const data = safeParse(event.data);
    if (!isRecord(data)) return;
    if (Array.isArray(data['entries'])) {
      for (const item of data['entries']) {
        const update = toUpdate(item);
        if (update !== undefined) merge(update, 'stream');
      }
    }
    // More changes than one message carries: the database tells the rest (at most every 2 s).
    if (typeof data['dropped'] === 'number' && data['dropped'] > 0 && Date.now() - lastReconcileAt > 2_000) void reconcile();
    scheduleRender();
  });

  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CLOSED) {
      // The browser gave up (an error status, such as a 503 while every replica drains): retry
      // ourselves, backing off.
      source.close();
      setLive('offline', `Disconnected; retrying in ${String(Math.round(retryMs / 1_000))} s`);
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 30_000);
    } else {
      // EventSource reconnects by itself; "hello" reconciles when it is back.
      setLive('reconnecting', 'Reconnecting…');
    }
  });
}

function safeParse(text: unknown): unknown {
  if (typeof text !== 'string') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}


// ---------------------------------------------------------------------------------------------
// The form

let submitting = false;
/** The key of the submission being tried: a retry of the same text reuses it (same entry). */
let attempt: { key: string; text: string } | undefined;

function clearErrors(): void {
  for (const name of ['author', 'message'] as const) {
    fieldErrors[name].hidden = true;
    fieldErrors[name].textContent = '';
    fieldInputs[name].removeAttribute('aria-invalid');
  }
  formError.hidden = true;
  formError.textContent = '';
}

function showFieldError(field: 'author' | 'message', text: string): void {
  fieldErrors[field].textContent = text;
  fieldErrors[field].hidden = false;
  fieldInputs[field].setAttribute('aria-invalid', 'true');
  fieldInputs[field].focus();
}

function showFormError(text: string): void {
  formError.textContent = text;
  formError.hidden = false;
}

function updateCounter(): void {
  messageCounter.textContent = `${String(codePoints(messageInput.value))} / 2000`;
}

for (const name of ['author', 'message'] as const) {
  fieldInputs[name].addEventListener('input', () => {
    if (!fieldErrors[name].hidden) {
      fieldErrors[name].hidden = true;
      fieldInputs[name].removeAttribute('aria-invalid');
    }
  });
}
messageInput.addEventListener('input', updateCounter);
// Ctrl+Enter (or ⌘+Enter) sends from the message box.
messageInput.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    form.requestSubmit();
  }
});

form.addEventListener('submit', (event) => {
  event.preventDefault();
  void submit();
});

async function submit(): Promise<void> {
  if (submitting) return;
  clearErrors();
  const author = authorInput.value;
  const message = messageInput.value;
  const text = JSON.stringify([author, message]);
  if (attempt?.text !== text) attempt = { key: randomKey(), text };

  submitting = true;
  submitButton.disabled = true;
  submitButton.textContent = 'Sending…';
  form.setAttribute('aria-busy', 'true');
  formStatus.textContent = '';
  try {
    let response: Response;
    try {
      response = await fetch('/api/entries', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Idempotency-Key': attempt.key },
        body: JSON.stringify({ author, message }),
        cache: 'no-store',
      });
    } catch {
      showFormError('Could not reach the server. Nothing was lost: what you typed is still here, so you can send it again.');
      return;
    }
    const body = await readJson(response);
    if (response.status === 202 && isRecord(body) && typeof body['id'] === 'string') {
      const acceptedBy = typeof body['acceptedBy'] === 'string' ? body['acceptedBy'] : null;
      merge(
        {
          id: body['id'],
          status: 'queued',
          author: author.trim(),
          message: message.replace(/\r\n?/g, '\n').trim(),
          acceptedBy,
        },
        'snapshot',
        true,
      );
      attempt = undefined;
      messageInput.value = '';
      updateCounter();
      formStatus.replaceChildren('Accepted by ', instanceTag(acceptedBy ?? 'unknown'), '. Watch it reach the database below.');
      scheduleRender();
      // If the stream says nothing, the next reconciliations ask about it.
      setTimeout(() => void reconcile(), STALE_AFTER_MS + 500);
      messageInput.focus();
      return;
    }
    const error = isRecord(body) ? (body as ApiError).error : undefined;
    if (response.status === 400 && (error?.field === 'author' || error?.field === 'message')) {
      showFieldError(error.field, error.message ?? `${error.field} is not valid`);
      return;
    }
    if (response.status === 503 || response.status === 502 || response.status === 504) {
      showFormError(
        'The system could not accept your entry right now. Nothing was saved; what you typed is kept, so you can send it again in a moment.',
      );
      return;
    }
    showFormError(error?.message ?? `The server answered ${String(response.status)}.`);
  } finally {
    submitting = false;
    submitButton.disabled = false;
    submitButton.textContent = 'Send entry';
    form.removeAttribute('aria-busy');
  }
}

// ---------------------------------------------------------------------------------------------
// The balancing probe

function renderBars(counts: ReadonlyMap<string, number>, total: number): void {
  const max = Math.max(1, ...counts.values());
  const rowsOut = [...counts].sort(([a], [b]) => a.localeCompare(b, undefined, { numeric: true }));
  balanceBars.replaceChildren(
    ...rowsOut.map(([instance, count]) => {
      const item = document.createElement('li');
      item.className = 'bar-row';
      item.dataset['instance'] = instance;
      const label = instanceTag(instance);
      label.classList.add('bar-label');
      const track = document.createElement('span');
      track.className = 'bar-track';
      track.setAttribute('aria-hidden', 'true');
      const fill = document.createElement('span');
      fill.className = 'bar-fill';
      fill.dataset['hue'] = hueOf(instance);
      // CSSOM, not a style attribute: allowed by the page's Content-Security-Policy.
      fill.style.width = `${String((count / max) * 100)}%`;
      track.append(fill);
      const value = textElement('span', 'bar-count', String(count));
      value.setAttribute('aria-label', `${String(count)} of ${String(total)} requests`);
      item.append(label, track, value);
      return item;
    }),
  );
}

async function probeBalancing(): Promise<void> {
  balanceButton.disabled = true;
  balanceStatus.textContent = `Sending ${String(BALANCE_REQUESTS)} requests…`;
  const counts = new Map<string, number>();
  let sent = 0;
  let failed = 0;
  // A few at a time; no-store so that every request reaches nginx (no HTTP cache answers).
  const runner = async () => {
    while (sent < BALANCE_REQUESTS) {
      sent += 1;
      try {
        const response = await fetch('/api/instance', { cache: 'no-store' });
        const body = await readJson(response);
        const instance =
          isRecord(body) && typeof body['instanceId'] === 'string' ? body['instanceId'] : response.headers.get('X-Instance-Id');
        if (!response.ok || instance === null) throw new Error(String(response.status));
        counts.set(instance, (counts.get(instance) ?? 0) + 1);
        renderBars(counts, BALANCE_REQUESTS);
      } catch {
        failed += 1;
      }
    }
  };
  try {
    await Promise.all([runner(), runner(), runner()]);
    const instances = counts.size;
    balanceStatus.textContent =
      `${String(BALANCE_REQUESTS - failed)} of ${String(BALANCE_REQUESTS)} answered, by ${String(instances)} instance${instances === 1 ? '' : 's'}` +
      (failed > 0 ? ` (${String(failed)} failed)` : '') +
      '.';
  } finally {
    balanceButton.disabled = false;
  }
}

balanceButton.addEventListener('click', () => void probeBalancing());

// ---------------------------------------------------------------------------------------------
// Queue health: the backlog from GET /api/stats, and whether the worker keeps up with it

interface QueueCounts {
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
}

const QUEUE_POLL_MS = 5_000;
/** The trend is read over this window: long enough that one burst is not "falling behind". */
const QUEUE_TREND_MS = 30_000;
const queueVerdict = element('queue-verdict', HTMLParagraphElement);
const queueTrend = element('queue-trend', HTMLParagraphElement);
const queueCells = {
  waiting: element('queue-waiting', HTMLElement),
  active: element('queue-active', HTMLElement),
  delayed: element('queue-delayed', HTMLElement),
  failed: element('queue-failed', HTMLElement),
};
const backlogSamples: { at: number; backlog: number }[] = [];

function toCounts(value: unknown): QueueCounts | undefined {
  const queue = isRecord(value) ? value['queue'] : undefined;
  if (!isRecord(queue)) return undefined;
  const counts: Partial<QueueCounts> = {};
  for (const key of ['waiting', 'active', 'delayed', 'failed'] as const) {
    const n = queue[key];
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) return undefined;
    counts[key] = n;
  }
  return counts as QueueCounts;
}

/** Sets the verdict; the live region announces it only when its text changes. */
function setVerdict(state: string, text: string): void {
  queueVerdict.dataset['state'] = state;
  if (queueVerdict.textContent !== text) queueVerdict.textContent = text;
}

/** What the page says of the queue, from the latest counts and the backlog's trend. */
function queueHealth(counts: QueueCounts, samples: readonly { at: number; backlog: number }[]): { state: string; verdict: string; trend: string } {
  const backlog = counts.waiting + counts.delayed;
  const first = samples[0];
  const span = first === undefined ? 0 : (samples[samples.length - 1]?.at ?? first.at) - first.at;
  const change = first === undefined ? 0 : backlog - first.backlog;
  const seconds = String(Math.round(span / 1000));
  const trend =
    span < QUEUE_POLL_MS
      ? ''
      : change > 0
        ? `The backlog grew by ${String(change)} in the last ${seconds} s.`
        : change < 0
          ? `The backlog shrank by ${String(-change)} in the last ${seconds} s.`
          : `The backlog did not change in the last ${seconds} s.`;
  const failedNote = counts.failed > 0 ? ` ${String(counts.failed)} ${counts.failed === 1 ? 'entry' : 'entries'} failed for good.` : '';
  if (backlog === 0) {
    return { state: counts.failed > 0 ? 'failed' : 'ok', verdict: `The worker keeps up: nothing is waiting.${failedNote}`, trend };
  }
  if (span >= QUEUE_POLL_MS && change > 0) {
    return { state: 'behind', verdict: `The worker is not keeping up: ${String(backlog)} waiting and growing.${failedNote}`, trend };
  }
  if (span >= QUEUE_POLL_MS && change < 0) {
    return { state: counts.failed > 0 ? 'failed' : 'ok', verdict: `The worker is catching up: ${String(backlog)} waiting.${failedNote}`, trend };
  }
  return { state: counts.failed > 0 ? 'failed' : 'busy', verdict: `${String(backlog)} waiting.${failedNote}`, trend };
}

async function pollQueue(): Promise<void> {
  let counts: QueueCounts | undefined;
  try {
    const response = await fetch('/api/stats', { headers: { Accept: 'application/json' }, cache: 'no-store' });
    counts = response.ok ? toCounts(await readJson(response)) : undefined;
  } catch {
    counts = undefined;
  }
  if (counts === undefined) {
    setVerdict('unavailable', 'The queue cannot be read right now.');
    for (const cell of Object.values(queueCells)) cell.textContent = '–';
    queueTrend.textContent = '';
    return;
  }
  const now = Date.now();
  backlogSamples.push({ at: now, backlog: counts.waiting + counts.delayed });
  while (backlogSamples.length > 1 && now - (backlogSamples[0]?.at ?? now) > QUEUE_TREND_MS) backlogSamples.shift();
  for (const key of ['waiting', 'active', 'delayed', 'failed'] as const) queueCells[key].textContent = String(counts[key]);
  const health = queueHealth(counts, backlogSamples);
  setVerdict(health.state, health.verdict);
  queueTrend.textContent = health.trend;
}

function startQueuePolling(): void {
  const tick = () => {
    void pollQueue().finally(() => {
      setTimeout(tick, QUEUE_POLL_MS);
    });
  };
  tick();
}

// ---------------------------------------------------------------------------------------------
// Start

servedBy.dataset['hue'] = hueOf(servedBy.dataset['instance'] ?? '');
updateCounter();
render();
connect();
startQueuePolling();
