/** One entry of the list as a row: author, time, status, message, and the replicas it went through. */
import { instanceTag, textElement } from './dom.ts';
import { acceptedAt, latencyMs, type EntryView } from './entry-model.ts';

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

const describeMs = (ms: number): string => (ms < 1_000 ? `${String(ms)} ms` : `${(ms / 1_000).toFixed(1)} s`);

/** What a row shows: the row is rebuilt only when this changes. */
export const rowSignature = (entry: EntryView): string =>
  JSON.stringify([entry.status, entry.author, entry.message, entry.acceptedBy, entry.persistedBy, entry.persistedAt, entry.failedReason, entry.mine]);

function heading(entry: EntryView): HTMLDivElement {
  const top = document.createElement('div');
  top.className = 'entry-top';
  top.append(textElement('span', 'entry-author', entry.author ?? '(unknown author)'));
  if (entry.mine) top.append(textElement('span', 'mine-tag', 'you'));
  const when = acceptedAt(entry);
  if (when !== undefined && !Number.isNaN(when.getTime())) {
    const time = textElement('time', 'entry-time', timeFormat.format(when));
    time.dateTime = when.toISOString();
    top.append(time);
  }
  const badge = textElement('span', 'status-badge', entry.status);
  badge.dataset['status'] = entry.status;
  top.append(badge);
  return top;
}

/** "accepted by web2 → persisted by worker in 12 ms". */
function path(entry: EntryView): HTMLParagraphElement {
  const accepted = document.createElement('span');
  accepted.className = 'hop';
  accepted.append('accepted by ', entry.acceptedBy === null ? textElement('span', 'pending', '?') : instanceTag(entry.acceptedBy));
  accepted.dataset['role'] = 'accepted-by';
  const persisted = document.createElement('span');
  persisted.className = 'hop';
  persisted.dataset['role'] = 'persisted-by';
  if (entry.persistedBy !== null) {
    persisted.append('persisted by ', instanceTag(entry.persistedBy));
    const latency = latencyMs(entry);
    if (latency !== undefined) persisted.append(textElement('span', 'latency', ` in ${describeMs(latency)}`));
  } else {
    persisted.append(textElement('span', 'pending', entry.status === 'failed' ? 'not persisted' : 'waiting for a worker…'));
  }
  const line = document.createElement('p');
  line.className = 'entry-path';
  line.append(accepted, textElement('span', 'arrow', ' → '), persisted);
  return line;
}

export function entryRow(entry: EntryView): HTMLLIElement {
  const row = document.createElement('li');
  row.className = 'entry';
  row.dataset['id'] = entry.id;
  row.dataset['status'] = entry.status;
  if (entry.mine) row.dataset['mine'] = 'true';
  row.append(heading(entry), textElement('p', 'entry-message', entry.message ?? ''), path(entry));
  if (entry.status === 'failed') {
    row.append(textElement('p', 'entry-reason', `Failed: ${entry.failedReason ?? 'no reason given'}`));
  }
  return row;
}
