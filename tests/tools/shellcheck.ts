/**
 * shellcheck from the tools image (tests/tools/Dockerfile) over the shell scripts given, paths
 * relative to the repository, which is mounted read-only: `npm run lint:files` needs no
 * shellcheck on the host. Exits with shellcheck's status.
 *
 *   node tests/tools/shellcheck.ts FILE...
 */
import { REPO_ROOT, runTool } from '@inflow/test-support';

const files = process.argv.slice(2);
if (files.length === 0) throw new Error('usage: node tests/tools/shellcheck.ts FILE...');
const result = await runTool(['--network', 'none', '-v', `${REPO_ROOT}:/repo:ro`, '-w', '/repo'], ['shellcheck', ...files]);
process.stdout.write(result.stdout);
process.stderr.write(result.stderr);
process.exitCode = result.status;
