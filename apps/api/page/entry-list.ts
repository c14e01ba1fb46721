/**
 * The latest entries: the model (entry-model.ts) and its rows in #entry-list. Updates from the
 * stream, the API and the form are merged at once and drawn in one pass per animation frame;
 * a row is rebuilt only when what it shows changed, and moved only when its place did.
 */
import { element } from './dom.ts';
import { mergeEntry, prune, staleEntries, summarise, visibleEntries, type EntryUpdate, type EntryView, type UpdateSource } from './entry-model.ts';
import { entryRow, rowSignature } from './entry-row.ts';

export class EntryList {
  #entries = new Map<string, EntryView>();
  readonly #rows = new Map<string, HTMLLIElement>();
  readonly #signatures = new WeakMap<HTMLLIElement, string>();
  #renderQueued = false;
  readonly #list = element('entry-list', HTMLOListElement);
  readonly #emptyNote = element('entries-empty', HTMLParagraphElement);
  readonly #summary = element('summary', HTMLParagraphElement);

  /** Merges what a source says about an entry (`mine`: sent from this page), and redraws. */
  merge(update: EntryUpdate, source: UpdateSource, mine = false): void {
    this.#entries.set(update.id, mergeEntry(this.#entries.get(update.id), update, source, Date.now(), mine));
    this.#scheduleRender();
  }

  /** The in-flight entries to ask the API about, one by one (see staleEntries). */
  stale(listed: ReadonlySet<string>): EntryView[] {
    return staleEntries(this.#entries.values(), listed, Date.now());
  }

  /** The entry was just asked about, even if nothing changed: not again before STALE_AFTER_MS. */
  markChecked(id: string): void {
    const entry = this.#entries.get(id);
    if (entry !== undefined) this.#entries.set(id, { ...entry, changedAt: Date.now() });
  }

  #scheduleRender(): void {
    if (this.#renderQueued) return;
    this.#renderQueued = true;
    requestAnimationFrame(() => {
      this.#renderQueued = false;
      this.render();
    });
  }

  render(): void {
    this.#entries = prune(this.#entries);
    const shown = visibleEntries(this.#entries.values());
    const wanted = new Set(shown.map((entry) => entry.id));
    for (const [id, row] of this.#rows) {
      if (!wanted.has(id)) {
        row.remove();
        this.#rows.delete(id);
      }
    }
    let previous: HTMLLIElement | undefined;
    for (const entry of shown) {
      const row = this.#rowFor(entry);
      const expectedPosition: ChildNode | null = previous === undefined ? this.#list.firstChild : previous.nextSibling;
      if (expectedPosition !== row) this.#list.insertBefore(row, expectedPosition);
      previous = row;
    }
    this.#emptyNote.hidden = shown.length > 0;
    this.#summary.textContent = summarise(shown);
  }

  /** The entry's row, rebuilt if what it shows changed; a row new to a non-empty list is highlighted. */
  #rowFor(entry: EntryView): HTMLLIElement {
    const row = this.#rows.get(entry.id);
    const signature = rowSignature(entry);
    if (row !== undefined && this.#signatures.get(row) === signature) return row;
    const fresh = entryRow(entry);
    if (row === undefined && this.#rows.size > 0) fresh.classList.add('entry-new');
    row?.replaceWith(fresh);
    this.#rows.set(entry.id, fresh);
    this.#signatures.set(fresh, signature);
    return fresh;
  }
}
