/** The page's queue health card (apps/api/page/queue-health.ts): what it says of GET /api/stats. */
import { inspect } from 'node:util';
import t from 'tap';
import { addSample, QUEUE_POLL_MS, queueHealth, toCounts, type BacklogSample, type QueueCounts } from '../page/queue-health.ts';

const counts = (waiting: number, fields: Partial<QueueCounts> = {}): QueueCounts => ({ waiting, active: 0, delayed: 0, failed: 0, ...fields });

/** Samples of the backlog, one poll apart. */
const polls = (...backlogs: number[]): BacklogSample[] => backlogs.map((backlog, i) => ({ at: i * QUEUE_POLL_MS, backlog }));

t.test('toCounts reads the four counts, or nothing', async (t) => {
  t.same(toCounts({ queue: { waiting: 3, active: 1, delayed: 2, failed: 0, paused: 9 }, other: true }), { waiting: 3, active: 1, delayed: 2, failed: 0 });
  for (const body of [undefined, null, {}, { queue: null }, { queue: { waiting: 1, active: 0, delayed: 0 } }, { queue: { waiting: -1, active: 0, delayed: 0, failed: 0 } }, { queue: { waiting: '1', active: 0, delayed: 0, failed: 0 } }, { queue: { waiting: Number.NaN, active: 0, delayed: 0, failed: 0 } }]) {
    t.equal(toCounts(body), undefined, inspect(body));
  }
});

t.test('nothing waiting: the worker keeps up, failures noted', async (t) => {
  t.same(queueHealth(counts(0, { active: 5 }), polls(0)), { state: 'ok', verdict: 'The worker keeps up: nothing is waiting.', trend: '' });
  t.same(queueHealth(counts(0, { failed: 1 }), polls(4, 0)), {
    state: 'failed',
    verdict: 'The worker keeps up: nothing is waiting. 1 entry failed for good.',
    trend: 'The backlog shrank by 4 in the last 5 s.',
  });
});

t.test('a backlog: growing is behind, shrinking is catching up, one poll is just busy', async (t) => {
  t.same(queueHealth(counts(100, { delayed: 50 }), polls(150)), { state: 'busy', verdict: '150 waiting.', trend: '' }, 'no trend from one sample');
  t.same(queueHealth(counts(200), polls(100, 150, 200)), {
    state: 'behind',
    verdict: 'The worker is not keeping up: 200 waiting and growing.',
    trend: 'The backlog grew by 100 in the last 10 s.',
  });
  t.same(queueHealth(counts(50, { failed: 2 }), polls(100, 50)), {
    state: 'failed',
    verdict: 'The worker is catching up: 50 waiting. 2 entries failed for good.',
    trend: 'The backlog shrank by 50 in the last 5 s.',
  });
  t.same(queueHealth(counts(7), polls(7, 7)), { state: 'busy', verdict: '7 waiting.', trend: 'The backlog did not change in the last 5 s.' });
});

t.test('the trend window keeps the last 30 s of samples, and always the newest', async (t) => {
  let samples: BacklogSample[] = [];
  for (let i = 0; i <= 10; i += 1) samples = addSample(samples, { at: i * QUEUE_POLL_MS, backlog: i });
  t.same(samples.map((sample) => sample.backlog), [4, 5, 6, 7, 8, 9, 10], 'samples older than 30 s are dropped');
  t.same(addSample([{ at: 0, backlog: 1 }], { at: 120_000, backlog: 2 }), [{ at: 120_000, backlog: 2 }], 'after a long gap, only the newest');
});
