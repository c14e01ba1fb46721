/**
 * The documentation stays true to the repository: every relative link of the README, docs/ and
 * the per-folder READMEs resolves (file and heading); every docs/ or README path named in a
 * comment exists; no comment points at a README section (they move; a docs file does not);
 * .env.example names each variable the programs, the compose file and the stack read, once;
 * docs/api.md lists every error code of the catalogue. Reads files only: no Docker, a second.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import t from 'tap';

const ROOT = join(import.meta.dirname, '..', '..');
const SELF = relative(ROOT, import.meta.filename);

/** Tracked and new (not ignored) files, relative to the repository's root; outside a git checkout, the tree minus what git ignores here. */
function listFiles(): string[] {
  try {
    return execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n');
  } catch {
    const skipped = /(^|\/)(node_modules|\.git|\.turbo|dist|test-results)(\/|$)/;
    return readdirSync(ROOT, { recursive: true, encoding: 'utf8' }).filter((file) => !skipped.test(file));
  }
}
const files = listFiles().filter((file) => file !== '' && existsSync(join(ROOT, file)) && statSync(join(ROOT, file)).isFile());
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');

const markdown = files.filter((file) => /^(README\.md|docs\/.+\.md|deploy\/[^/]+\/README\.md)$/.test(file));

/** Lines outside fenced code blocks, with inline code removed. */
function prose(text: string): string[] {
  let fenced = false;
  return text.split('\n').map((line) => {
    if (line.trimStart().startsWith('```')) {
      fenced = !fenced;
      return '';
    }
    return fenced ? '' : line.replace(/`[^`]*`/g, '');
  });
}

/** GitHub's anchors for a Markdown file's headings (github-slugger: lower case, punctuation dropped, spaces to hyphens, repeats numbered). */
function anchors(file: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  let fenced = false;
  for (const line of read(file).split('\n')) {
    if (line.trimStart().startsWith('```')) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading?.[1] === undefined) continue;
    const text = heading[1].replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
    const base = text.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '').replace(/ /g, '-');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    result.add(count === 0 ? base : `${base}-${count}`);
  }
  return result;
}

/** Whether `path` (relative to the root) exists and, with an anchor, has that heading. */
function resolves(path: string, anchor: string | undefined): string | null {
  if (!existsSync(join(ROOT, path))) return `${path} does not exist`;
  if (anchor === undefined || anchor === '') return null;
  if (statSync(join(ROOT, path)).isDirectory() || !path.endsWith('.md')) return `${path} has no headings to link to`;
  return anchors(path).has(anchor) ? null : `${path} has no heading #${anchor}`;
}

t.test('the README, docs/ and the per-folder READMEs exist', async (t) => {
  t.ok(markdown.includes('README.md'), 'README.md');
  t.ok(markdown.some((file) => file.startsWith('docs/')), 'docs/*.md');
});

t.test('every relative link in the documentation resolves', async (t) => {
  for (const file of markdown) {
    const lines = prose(read(file));
    lines.forEach((line, index) => {
      for (const [, target] of line.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
        if (target === undefined || /^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
        const [path = '', anchor] = target.split('#');
        const resolved = path === '' ? file : join(dirname(file), decodeURIComponent(path));
        const problem = relative(ROOT, join(ROOT, resolved)).startsWith('..') ? 'leaves the repository' : resolves(resolved, anchor);
        t.equal(problem, null, `${file}:${index + 1}: ${target}`);
      }
    });
  }
});

const sources = files.filter((file) => file !== SELF && !/(^|\/)(package-lock\.json|\.gitignore)$/.test(file) && !/\.(png|svg|ico|jpg|woff2?)$/.test(file));

t.test('every docs/ or README path a comment names exists, with its heading', async (t) => {
  let named = 0;
  for (const file of sources) {
    read(file)
      .split('\n')
      .forEach((line, index) => {
        for (const [, path = '', anchor] of line.matchAll(/(?<![\w./-])((?:docs\/[\w-]+|deploy\/[\w-]+\/README)\.md)(?:#([\w-]+))?/g)) {
          named += 1;
          t.equal(resolves(path, anchor), null, `${file}:${index + 1}: ${path}${anchor === undefined ? '' : `#${anchor}`}`);
        }
      });
  }
  t.ok(named > 0, `${named} references checked`);
});

t.test('no comment points at a section of a README: sections move, so they link a docs file', async (t) => {
  const sectionReference = /\bREADME(?:\.md)?\s*(?:[:,]\s*)?["“]|\bREADME(?:\.md)?:\s*[A-Z]|["”]\s+in\s+(?:the\s+)?README/;
  for (const file of sources) {
    read(file)
      .split('\n')
      .forEach((line, index) => {
        if (sectionReference.test(line)) t.fail(`${file}:${index + 1}: ${line.trim()}`);
      });
  }
  t.pass('none found');
});

t.test('.env.example names every variable once, and only variables something reads', async (t) => {
  const documented = [...read('.env.example').matchAll(/^#?\s?([A-Z][A-Z0-9_]*)=/gm)].map((match) => match[1] ?? '');
  const readers: Record<string, RegExp> = {
    'shared/src/config.ts': /\b(?:read\(|env\[)'([A-Z][A-Z0-9_]*)'/g,
    'docker-compose.yml': /\$\{([A-Z][A-Z0-9_]*)/g,
    'deploy/swarm/stack.yml': /\$\{([A-Z][A-Z0-9_]*)/g,
    'deploy/compose/replicated-redis.yml': /\$\{([A-Z][A-Z0-9_]*)/g,
  };
  const readBy = new Set<string>();
  for (const [file, pattern] of Object.entries(readers)) {
    for (const [, name = ''] of read(file).matchAll(pattern)) readBy.add(name);
  }
  t.ok(readBy.size > 20, `${readBy.size} variables read`);
  for (const name of [...readBy].sort()) t.equal(documented.filter((entry) => entry === name).length, 1, `${name} is documented once`);
  for (const name of documented) t.ok(readBy.has(name), `${name} in .env.example is read by something`);
});

t.test('docs/api.md lists every error code of the catalogue', async (t) => {
  // Every code is a snake_case string literal of the catalogue, and nothing else there is one.
  const codes = new Set([...read('shared/src/errors.ts').matchAll(/'([a-z]+(?:_[a-z]+)+)'/g)].map((match) => match[1] ?? ''));
  t.ok(codes.size > 10, `${codes.size} codes in shared/src/errors.ts`);
  const api = read('docs/api.md');
  for (const code of codes) t.ok(api.includes(`\`${code}\``), `docs/api.md names ${code}`);
});
