/** Facts the manifests must agree with, read from the repository itself. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { isObject, REPO_ROOT } from './kustomize.ts';

export interface DockerStage {
  name: string;
  from: string;
  expose: number[];
  env: Record<string, string>;
  user: string | undefined;
}

/** The Dockerfile's stages (FROM … AS name), with what each one EXPOSEs, sets in ENV and USER. */
export function dockerfile(): { stages: Map<string, DockerStage>; args: Map<string, string> } {
  const text = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const stages = new Map<string, DockerStage>();
  const args = new Map<string, string>();
  let current: DockerStage | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [instruction = '', ...rest] = line.split(/\s+/);
    const argument = rest.join(' ');
    switch (instruction.toUpperCase()) {
      case 'FROM': {
        const match = /^(\S+)\s+AS\s+(\S+)$/i.exec(argument);
        if (match?.[1] === undefined || match[2] === undefined) throw new Error(`a FROM without AS: ${line}`);
        // A stage inherits ENV, EXPOSE and USER from the stage it is built on.
        const parent = stages.get(match[1]);
        current = { name: match[2], from: match[1], expose: [...(parent?.expose ?? [])], env: { ...parent?.env }, user: parent?.user };
        stages.set(current.name, current);
        break;
      }
      case 'ARG': {
        const [name = '', value] = argument.split('=', 2);
        if (value !== undefined) args.set(name, value);
        break;
      }
      case 'EXPOSE':
        current?.expose.push(...rest.map((port) => Number.parseInt(port, 10)));
        break;
      case 'ENV':
        for (const pair of rest) {
          const [name = '', value = ''] = pair.split('=', 2);
          if (current !== undefined) current.env[name] = value.replace(/^"|"$/g, '');
        }
        break;
      case 'USER':
        if (current !== undefined) current.user = argument;
        break;
      default:
        break;
    }
  }
  return { stages, args };
}

export interface ComposeService {
  image: string;
  target: string | undefined;
}

/** docker-compose.yml's services, with `${VAR:-default}` and `${VAR-default}` at their defaults. */
export function composeServices(): Map<string, ComposeService> {
  const document: unknown = parse(readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true });
  const services = isObject(document) && isObject(document['services']) ? document['services'] : {};
  const result = new Map<string, ComposeService>();
  for (const [name, service] of Object.entries(services)) {
    if (!isObject(service) || typeof service['image'] !== 'string') continue;
    const build = service['build'];
    const target = isObject(build) && typeof build['target'] === 'string' ? build['target'] : undefined;
    result.set(name, { image: withDefaults(service['image']), target });
  }
  return result;
}

function withDefaults(value: string): string {
  return value.replace(/\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}/g, '$1');
}

export function repoFile(...path: string[]): string {
  return readFileSync(join(REPO_ROOT, ...path), 'utf8');
}
