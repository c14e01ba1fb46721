/**
 * Just enough of nginx's configuration language to check deploy/k8s/base/nginx.conf: a parser
 * (directives, blocks, quotes, comments) and nginx's location choice for a URI
 * (https://nginx.org/en/docs/http/ngx_http_core_module.html#location).
 */

export interface Directive {
  name: string;
  args: string[];
  block?: Directive[];
}

export function parseNginx(text: string): Directive[] {
  const tokens = tokenize(text);
  let index = 0;
  const parseBlock = (nested: boolean): Directive[] => {
    const directives: Directive[] = [];
    for (;;) {
      const token = tokens[index];
      if (token === undefined) {
        if (nested) throw new Error('nginx.conf: a block is not closed');
        return directives;
      }
      index += 1;
      if (token === '}') {
        if (!nested) throw new Error('nginx.conf: an unexpected }');
        return directives;
      }
      const words = [token];
      for (;;) {
        const next = tokens[index];
        index += 1;
        if (next === undefined) throw new Error(`nginx.conf: "${words.join(' ')}" does not end`);
        if (next === ';') {
          directives.push({ name: words[0] ?? '', args: words.slice(1) });
          break;
        }
        if (next === '{') {
          directives.push({ name: words[0] ?? '', args: words.slice(1), block: parseBlock(true) });
          break;
        }
        if (next === '}') throw new Error(`nginx.conf: "${words.join(' ')}" has no ;`);
        words.push(next);
      }
    }
  };
  return parseBlock(false);
}

function tokenize(text: string): string[] {
  const tokens: string[] = [];
  let index = 0;
  while (index < text.length) {
    const char = text[index] ?? '';
    if (/\s/.test(char)) {
      index += 1;
    } else if (char === '#') {
      while (index < text.length && text[index] !== '\n') index += 1;
    } else if (char === '{' || char === '}' || char === ';') {
      tokens.push(char);
      index += 1;
    } else if (char === '"' || char === "'") {
      let value = '';
      index += 1;
      while (index < text.length && text[index] !== char) {
        if (text[index] === '\\') index += 1;
        value += text[index] ?? '';
        index += 1;
      }
      index += 1;
      tokens.push(value);
    } else {
      let value = '';
      while (index < text.length && !/[\s{};]/.test(text[index] ?? '')) {
        value += text[index] ?? '';
        index += 1;
      }
      tokens.push(value);
    }
  }
  return tokens;
}

export function find(directives: readonly Directive[], name: string): Directive[] {
  return directives.filter((directive) => directive.name === name);
}

export interface Location {
  modifier: '=' | '^~' | '~' | '~*' | '';
  pattern: string;
  block: Directive[];
}

export function locations(server: readonly Directive[]): Location[] {
  return find(server, 'location').map((directive) => {
    const [first = '', second] = directive.args;
    const modifier = second === undefined ? '' : first;
    if (!['=', '^~', '~', '~*', ''].includes(modifier)) throw new Error(`nginx.conf: location modifier ${modifier}`);
    return { modifier: modifier as Location['modifier'], pattern: second ?? first, block: directive.block ?? [] };
  });
}

/** The location nginx picks for a URI (the path, without the query string). */
export function chooseLocation(all: readonly Location[], uri: string): Location | undefined {
  const usable = all.filter((location) => !location.block.some((directive) => directive.name === 'internal'));
  const exact = usable.find((location) => location.modifier === '=' && location.pattern === uri);
  if (exact !== undefined) return exact;
  const prefixes = usable
    .filter((location) => (location.modifier === '' || location.modifier === '^~') && uri.startsWith(location.pattern))
    .sort((a, b) => b.pattern.length - a.pattern.length);
  const longest = prefixes[0];
  if (longest?.modifier === '^~') return longest;
  const regex = usable.find(
    (location) => (location.modifier === '~' || location.modifier === '~*') && new RegExp(location.pattern, location.modifier === '~*' ? 'i' : '').test(uri),
  );
  return regex ?? longest;
}
