/** The queue health card: polls GET /api/stats and shows the counts and the verdict (queue-health.ts). */
import { readJson } from './api-data.ts';
import { element } from './dom.ts';
import { addSample, backlogOf, QUEUE_COUNT_KEYS, QUEUE_POLL_MS, queueHealth, toCounts, type BacklogSample, type QueueCounts } from './queue-health.ts';

async function readCounts(): Promise<QueueCounts | undefined> {
  try {
    const response = await fetch('/api/stats', { headers: { Accept: 'application/json' }, cache: 'no-store' });
    return response.ok ? toCounts(await readJson(response)) : undefined;
  } catch {
    return undefined;
  }
}

export function startQueueCard(): void {
  const verdict = element('queue-verdict', HTMLParagraphElement);
  const trend = element('queue-trend', HTMLParagraphElement);
  const cells = {
    waiting: element('queue-waiting', HTMLElement),
    active: element('queue-active', HTMLElement),
    delayed: element('queue-delayed', HTMLElement),
    failed: element('queue-failed', HTMLElement),
  };
  let samples: BacklogSample[] = [];

  /** Sets the verdict; the live region announces it only when its text changes. */
  const setVerdict = (state: string, text: string): void => {
    verdict.dataset['state'] = state;
    if (verdict.textContent !== text) verdict.textContent = text;
  };

  const poll = async (): Promise<void> => {
    const counts = await readCounts();
    if (counts === undefined) {
      setVerdict('unavailable', 'The queue cannot be read right now.');
      for (const cell of Object.values(cells)) cell.textContent = '–';
      trend.textContent = '';
      return;
    }
    samples = addSample(samples, { at: Date.now(), backlog: backlogOf(counts) });
    for (const key of QUEUE_COUNT_KEYS) cells[key].textContent = String(counts[key]);
    const health = queueHealth(counts, samples);
    setVerdict(health.state, health.verdict);
    trend.textContent = health.trend;
  };

  const tick = (): void => {
    void poll().finally(() => {
      setTimeout(tick, QUEUE_POLL_MS);
    });
  };
  tick();
}
