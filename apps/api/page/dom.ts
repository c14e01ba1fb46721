/**
 * Finding the page's elements and making new ones. Every piece of data reaches the page through
 * textContent, never as markup.
 */

/** The element of index.html with this id; a missing or different one is a bug, so it throws. */
export function element<T extends HTMLElement>(id: string, type: new () => T): T {
  const found = document.getElementById(id);
  if (!(found instanceof type)) throw new Error(`#${id} is missing`);
  return found;
}

export function textElement<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

/** The same colour for the same instance everywhere on the page: web1, web2, web3 differ. */
export function hueOf(instance: string): string {
  const digits = /(\d+)$/.exec(instance)?.[1];
  let n = digits === undefined ? 0 : Number(digits);
  if (digits === undefined) for (const char of instance) n = (n * 31 + (char.codePointAt(0) ?? 0)) % 997;
  return String(n % 6);
}

/** An instance id, in its colour. */
export function instanceTag(instance: string): HTMLSpanElement {
  const tag = textElement('span', 'instance-tag', instance);
  tag.dataset['hue'] = hueOf(instance);
  return tag;
}
