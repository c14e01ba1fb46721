/**
 * The live stream, GET /api/events (Server-Sent Events fed by the queue's events), and the
 * indicator that says whether the page is live. The stream can miss events, so each (re)connect
 * and each report of dropped events reconciles the list from the API.
 */
import { isRecord, parseJson, stringField, toUpdate } from './api-data.ts';
import { element, instanceTag } from './dom.ts';
import type { EntryList } from './entry-list.ts';
import type { Reconciler } from './reconciler.ts';

type LiveState = 'connecting' | 'live' | 'reconnecting' | 'offline';

const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 30_000;
/** Dropped events trigger a reconciliation at most this often: a burst reports them in every message. */
const DROPPED_RECONCILE_MIN_GAP_MS = 2_000;

export function connectEventStream(entries: EntryList, reconciler: Reconciler): void {
  const live = element('live', HTMLParagraphElement);
  const liveText = element('live-text', HTMLSpanElement);
  let stream: EventSource | undefined;
  let retryMs = FIRST_RETRY_MS;

  const setLive = (state: LiveState, ...content: (string | Node)[]): void => {
    live.dataset['state'] = state;
    liveText.replaceChildren(...content);
  };

  const connect = (): void => {
    stream?.close();
    setLive('connecting', 'Connecting…');
    const source = new EventSource('/api/events');
    stream = source;

    source.addEventListener('hello', (event) => {
      retryMs = FIRST_RETRY_MS;
      const instance = stringField(parseJson(event.data), 'instanceId') ?? 'unknown';
      setLive('live', 'Live · stream from ', instanceTag(instance));
      live.dataset['instance'] = instance;
      // Whatever happened while we were not listening: read it from the database.
      void reconciler.run();
    });

    source.addEventListener('entries', (event) => {
      const data = parseJson(event.data);
      if (!isRecord(data)) return;
      if (Array.isArray(data['entries'])) {
        for (const item of data['entries']) {
          const update = toUpdate(item);
          if (update !== undefined) entries.merge(update, 'stream');
        }
      }
      // More changes than one message carries: the database tells the rest.
      const dropped = data['dropped'];
      if (typeof dropped === 'number' && dropped > 0 && Date.now() - reconciler.lastStartedAt > DROPPED_RECONCILE_MIN_GAP_MS) {
        void reconciler.run();
      }
    });

    source.addEventListener('error', () => {
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (an error status, such as a 503 while every replica drains): retry
        // ourselves, backing off.
        source.close();
        setLive('offline', `Disconnected; retrying in ${String(Math.round(retryMs / 1_000))} s`);
        setTimeout(connect, retryMs);
        retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
      } else {
        // EventSource reconnects by itself; "hello" reconciles when it is back.
        setLive('reconnecting', 'Reconnecting…');
      }
    });
  };

  connect();
}
