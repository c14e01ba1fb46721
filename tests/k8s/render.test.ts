/**
 * `kubectl kustomize` renders the base and every overlay, offline; so does the overlay that
 * deploy/k8s/README.md tells you to write for the real password. kubectl is required: without it this file
 * fails (never skips).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import t from 'tap';
import { K8S_DIR, render, renderTargets, requireKubectl } from './lib/kustomize.ts';
import { allContainers, imageRepository, ofKind, workloads } from './lib/objects.ts';
import { repoFile } from './lib/repo.ts';

t.test('kubectl with kustomize 5 is installed', async (t) => {
  const { kubectl, kustomize } = requireKubectl();
  t.pass(`kubectl ${kubectl}, kustomize ${kustomize}`);
});

t.test('without kubectl the check fails, naming it (it does not skip)', async (t) => {
  t.throws(() => requireKubectl({ ...process.env, PATH: '/nonexistent' }), /kubectl .*is required/);
});

for (const target of renderTargets()) {
  t.test(`kubectl kustomize deploy/k8s/${target.name}`, async (t) => {
    const objects = render(target.dir);
    t.ok(objects.length > 0, `${objects.length} objects`);
    const ids = objects.map((object) => `${object.kind}/${object.metadata.namespace ?? ''}/${object.metadata.name}`);
    t.same(ids.filter((id, index) => ids.indexOf(id) !== index), [], 'no object twice');
  });
}

t.test('the targets are the base and the three overlays', async (t) => {
  t.same(renderTargets().map((target) => target.name), ['base', 'overlays/autoscale', 'overlays/external-data', 'overlays/replicated-redis']);
});

t.test("deploy/k8s/README.md's own overlay (the real password, your registry) renders", async (t) => {
  const script = readmeLocalOverlay();
  const dir = mkdtempSync(join(tmpdir(), 'inflow-k8s-local-'));
  t.teardown(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  // That page's kustomization lives in deploy/k8s/local/; here in a temporary folder, so its
  // `../` paths are made relative to that folder instead.
  const kustomization = script.kustomization.replace(/^(\s*-\s+)\.\.\/(\S+)/gm, (_line, lead: string, path: string) => `${lead}${relative(dir, join(K8S_DIR, path))}`);
  writeFileSync(join(dir, 'kustomization.yaml'), kustomization);
  writeFileSync(join(dir, 'db-pass'), 'a-real-password-from-a-file');
  const objects = render(dir);

  const secrets = ofKind(objects, 'Secret');
  t.equal(secrets.length, 1, 'one Secret');
  const secret = secrets[0];
  t.equal(Buffer.from(secret?.data?.['DB_PASS'] ?? '', 'base64').toString(), 'a-real-password-from-a-file', 'DB_PASS is the file, byte for byte');
  for (const workload of workloads(objects)) {
    for (const container of allContainers(workload.template)) {
      for (const variable of container.env ?? []) {
        const ref = variable.valueFrom?.secretKeyRef;
        if (ref !== undefined) t.equal(ref.name, secret?.metadata.name, `${workload.name}/${container.name}: ${variable.name} reads the replaced Secret`);
      }
      const image = container.image ?? '';
      if (['inflow-api', 'inflow-worker'].includes(imageRepository(image))) {
        t.match(image, /^registry\.example\.com\/team\/inflow-(api|worker):1\.0\.0$/, `${workload.name}: the image comes from your registry`);
      }
    }
  }
  t.match(script.passwordCommand, /tr -d '\\n'/, 'the password is written without a trailing newline (PostgreSQL would keep it; the apps trim it)');
});

/** The password overlay in deploy/k8s/README.md: the kustomization and the command that writes db-pass. */
function readmeLocalOverlay(): { kustomization: string; passwordCommand: string } {
  const readme = repoFile('deploy/k8s/README.md');
  const heredoc = /cat > deploy\/k8s\/local\/kustomization\.yaml <<'EOF'\n([\s\S]*?)\nEOF\n/.exec(readme);
  const password = /^.*> deploy\/k8s\/local\/db-pass$/m.exec(readme);
  if (heredoc?.[1] === undefined || password === null) throw new Error('deploy/k8s/README.md has no deploy/k8s/local overlay (kustomization.yaml heredoc and db-pass command)');
  return { kustomization: heredoc[1], passwordCommand: password[0] };
}
