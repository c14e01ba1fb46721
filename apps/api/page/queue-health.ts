/**
 * What the page says of the queue, from the counts of GET /api/stats and the backlog's trend over
 * the last polls: pure functions, no DOM (queue-card.ts draws them).
 */
import { isRecord } from './api-data.ts';

/** How often the card reads GET /api/stats. */
export const QUEUE_POLL_MS = 5_000;
/** The trend is read over this window: long enough that one burst is not "falling behind". */
const QUEUE_TREND_MS = 30_000;

export const QUEUE_COUNT_KEYS = ['waiting', 'active', 'delayed', 'failed'] as const;

export type QueueCounts = Record<(typeof QUEUE_COUNT_KEYS)[number], number>;

export interface BacklogSample {
  at: number;
  backlog: number;
}

export interface QueueHealth {
  /** For the styles: ok, busy, behind or failed. */
  state: string;
  verdict: string;
  trend: string;
}

/** The counts of GET /api/stats's `queue`, or undefined unless each is a count. */
export function toCounts(value: unknown): QueueCounts | undefined {
  const queue = isRecord(value) ? value['queue'] : undefined;
  if (!isRecord(queue)) return undefined;
  const counts: Partial<QueueCounts> = {};
  for (const key of QUEUE_COUNT_KEYS) {
    const n = queue[key];
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) return undefined;
    counts[key] = n;
  }
  return counts as QueueCounts;
}

/** The waiting entries: those ready to run and those waiting for a retry. */
export const backlogOf = (counts: QueueCounts): number => counts.waiting + counts.delayed;

/** The samples with one more, without those older than the trend's window (the newest stays). */
export function addSample(samples: readonly BacklogSample[], sample: BacklogSample): BacklogSample[] {
  const kept = [...samples, sample];
  while (kept.length > 1 && sample.at - (kept[0]?.at ?? sample.at) > QUEUE_TREND_MS) kept.shift();
  return kept;
}

/** The verdict on the latest counts, given the backlog's samples over the window (oldest first). */
export function queueHealth(counts: QueueCounts, samples: readonly BacklogSample[]): QueueHealth {
  const backlog = backlogOf(counts);
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
