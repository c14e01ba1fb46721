/**
 * Renders deploy/k8s with `kubectl kustomize`, offline. kubectl is REQUIRED: where it is missing
 * these tests fail, naming it; they never skip.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

export const REPO_ROOT = join(import.meta.dirname, '..', '..', '..');
export const K8S_DIR = join(REPO_ROOT, 'deploy', 'k8s');
export const BASE_DIR = join(K8S_DIR, 'base');

/** The oldest kustomize that renders these files (`labels`, components, `sleep` preStop). */
const MIN_KUSTOMIZE_MAJOR = 5;

/** Any rendered object; the kind-specific checks cast to kubernetes-models' interfaces. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [key: string]: unknown };
  [key: string]: unknown;
}

export interface Target {
  /** "base" or "overlays/NAME", relative to deploy/k8s. */
  name: string;
  dir: string;
}

/** The base and every overlay under deploy/k8s/overlays: each must render. */
export function renderTargets(): Target[] {
  const overlays = readdirSync(join(K8S_DIR, 'overlays'))
    .filter((entry) => statSync(join(K8S_DIR, 'overlays', entry)).isDirectory())
    .sort();
  return [{ name: 'base', dir: BASE_DIR }, ...overlays.map((entry) => ({ name: `overlays/${entry}`, dir: join(K8S_DIR, 'overlays', entry) }))];
}

/**
 * kubectl's version, and the kustomize built into it. Throws, with what to do, when kubectl is
 * not on PATH or its kustomize is too old: a missing tool is a failure, not a skip.
 */
export function requireKubectl(env: NodeJS.ProcessEnv = process.env): { kubectl: string; kustomize: string } {
  const result = spawnSync('kubectl', ['version', '--client', '--output=json'], { env, encoding: 'utf8' });
  if (result.error !== undefined || result.status !== 0) {
    const why = result.error?.message ?? result.stderr.trim();
    throw new Error(
      `kubectl (1.27 or later, with kustomize ${MIN_KUSTOMIZE_MAJOR}) is required to validate deploy/k8s and could not be run: ${why}. ` +
        'Install kubectl (deploy/k8s/README.md); these tests fail rather than skip without it.',
    );
  }
  const version = JSON.parse(result.stdout) as { clientVersion?: { gitVersion?: string }; kustomizeVersion?: string };
  const kubectl = version.clientVersion?.gitVersion ?? 'unknown';
  const kustomize = version.kustomizeVersion ?? '';
  const major = Number(/^v?(\d+)\./.exec(kustomize)?.[1] ?? Number.NaN);
  if (!(major >= MIN_KUSTOMIZE_MAJOR)) {
    throw new Error(`kubectl ${kubectl} has kustomize "${kustomize}"; deploy/k8s needs kustomize >= ${MIN_KUSTOMIZE_MAJOR} (kubectl >= 1.27)`);
  }
  return { kubectl, kustomize };
}

/** `kubectl kustomize DIR`, parsed into objects. Throws on a render or YAML error. */
export function render(dir: string): K8sObject[] {
  requireKubectl();
  const text = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return parseObjects(text, dir);
}

export function parseObjects(text: string, source: string): K8sObject[] {
  const objects: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors.map((error) => error.message).join('; ')}`);
    const value: unknown = doc.toJS();
    if (value === null) continue;
    if (!isObject(value) || typeof value['apiVersion'] !== 'string' || typeof value['kind'] !== 'string' || !isObject(value['metadata'])) {
      throw new Error(`${source}: a document without apiVersion, kind or metadata`);
    }
    objects.push(value as K8sObject);
  }
  return objects;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

let cache: Map<string, K8sObject[]> | undefined;

/** Every target rendered once per test file. */
export function renderAll(): Map<string, K8sObject[]> {
  cache ??= new Map(renderTargets().map((target) => [target.name, render(target.dir)]));
  return cache;
}
