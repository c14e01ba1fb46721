// Copies the page's static files next to the bundled main.js (dist/public). Run by `npm run build`.
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const from = import.meta.dirname;
const to = join(import.meta.dirname, '..', 'dist', 'public');
mkdirSync(to, { recursive: true });
for (const file of ['index.html', 'styles.css', 'favicon.svg']) copyFileSync(join(from, file), join(to, file));
