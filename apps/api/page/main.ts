/**
 * The inflow page: a form that POSTs entries, the latest entries with their live status, the
 * queue's health and a load-balancing probe. Plain DOM, no framework; esbuild bundles these
 * modules and the entry rules of @inflow/shared into one same-origin script (dist/public/main.js).
 *
 * Live updates come from GET /api/events. The stream can miss events, so the list is also
 * reconciled from the API (PostgreSQL) when the stream (re)connects, when it reports dropped
 * events, and every few seconds.
 */
import { setUpBalanceProbe } from './balance-probe.ts';
import { element, hueOf } from './dom.ts';
import { setUpEntryForm } from './entry-form.ts';
import { EntryList } from './entry-list.ts';
import { connectEventStream } from './event-stream.ts';
import { startQueueCard } from './queue-card.ts';
import { Reconciler } from './reconciler.ts';

// The replica that served the page wrote its id into #served-by (apps/api/src/page/page.routes.ts).
const servedBy = element('served-by', HTMLSpanElement);
servedBy.dataset['hue'] = hueOf(servedBy.dataset['instance'] ?? '');

const entries = new EntryList();
const reconciler = new Reconciler(entries);
setUpEntryForm(entries, reconciler);
setUpBalanceProbe();
entries.render();
reconciler.start();
connectEventStream(entries, reconciler);
startQueueCard();
