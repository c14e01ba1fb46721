/**
 * The balancing panel: a burst of GET /api/instance, and one bar per instance that answered.
 * no-store on each request so that every one reaches nginx (no HTTP cache answers).
 */
import { readJson, stringField } from './api-data.ts';
import { element, hueOf, instanceTag, textElement } from './dom.ts';

const BALANCE_REQUESTS = 30;
/** Requests in flight at once: a few, like a person's browser, not a load test. */
const CONCURRENCY = 3;

function bar(instance: string, count: number, max: number, total: number): HTMLLIElement {
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
}

export function setUpBalanceProbe(): void {
  const button = element('balance-button', HTMLButtonElement);
  const status = element('balance-status', HTMLParagraphElement);
  const bars = element('balance-bars', HTMLUListElement);

  const renderBars = (counts: ReadonlyMap<string, number>): void => {
    const max = Math.max(1, ...counts.values());
    const sorted = [...counts].sort(([a], [b]) => a.localeCompare(b, undefined, { numeric: true }));
    bars.replaceChildren(...sorted.map(([instance, count]) => bar(instance, count, max, BALANCE_REQUESTS)));
  };

  const probe = async (): Promise<void> => {
    button.disabled = true;
    status.textContent = `Sending ${String(BALANCE_REQUESTS)} requests…`;
    const counts = new Map<string, number>();
    let sent = 0;
    let failed = 0;
    const runner = async () => {
      while (sent < BALANCE_REQUESTS) {
        sent += 1;
        try {
          const response = await fetch('/api/instance', { cache: 'no-store' });
          const instance = stringField(await readJson(response), 'instanceId') ?? response.headers.get('X-Instance-Id');
          if (!response.ok || instance === null) throw new Error(String(response.status));
          counts.set(instance, (counts.get(instance) ?? 0) + 1);
          renderBars(counts);
        } catch {
          failed += 1;
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: CONCURRENCY }, runner));
      const instances = counts.size;
      status.textContent =
        `${String(BALANCE_REQUESTS - failed)} of ${String(BALANCE_REQUESTS)} answered, by ${String(instances)} instance${instances === 1 ? '' : 's'}` +
        (failed > 0 ? ` (${String(failed)} failed)` : '') +
        '.';
    } finally {
      button.disabled = false;
    }
  };

  button.addEventListener('click', () => void probe());
}
