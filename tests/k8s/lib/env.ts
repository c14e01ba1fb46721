/**
 * The environment a container gets, resolved from the rendered objects, and the variables the
 * config loader reads from it.
 */
import type { Environment } from '@inflow/shared';
import type { K8sObject } from './kustomize.ts';
import { named, type IContainer } from './objects.ts';

export interface EnvValue {
  value: string;
  from: 'value' | 'configMap' | 'secret' | 'field';
  /** For configMap and secret: which object and key. */
  ref?: { name: string; key: string };
}

/**
 * NAME → value for a container. Secret values are replaced by a stand-in (the committed Secret is
 * empty on purpose), the pod name by a typical Deployment pod name. Throws on a reference to a
 * missing ConfigMap, Secret or key, and on a variable set twice.
 */
export function containerEnv(container: IContainer, objects: readonly K8sObject[], podName: string): Map<string, EnvValue> {
  const env = new Map<string, EnvValue>();
  const set = (name: string, value: EnvValue) => {
    if (env.has(name)) throw new Error(`${container.name}: ${name} is set twice`);
    env.set(name, value);
  };
  for (const source of container.envFrom ?? []) {
    const prefix = source.prefix ?? '';
    if (source.configMapRef !== undefined) {
      const name = source.configMapRef.name ?? '';
      for (const [key, value] of Object.entries(named(objects, 'ConfigMap', name).data ?? {})) {
        set(prefix + key, { value, from: 'configMap', ref: { name, key } });
      }
    }
    if (source.secretRef !== undefined) {
      const name = source.secretRef.name ?? '';
      for (const key of Object.keys(named(objects, 'Secret', name).data ?? {})) {
        set(prefix + key, { value: SECRET_STAND_IN, from: 'secret', ref: { name, key } });
      }
    }
  }
  for (const variable of container.env ?? []) {
    const source = variable.valueFrom;
    if (source === undefined) {
      set(variable.name, { value: variable.value ?? '', from: 'value' });
    } else if (source.configMapKeyRef !== undefined) {
      const { name = '', key } = source.configMapKeyRef;
      const value = named(objects, 'ConfigMap', name).data?.[key];
      if (value === undefined) throw new Error(`${container.name}: ${variable.name} names key ${key}, which ConfigMap ${name} does not have`);
      set(variable.name, { value, from: 'configMap', ref: { name, key } });
    } else if (source.secretKeyRef !== undefined) {
      const { name = '', key } = source.secretKeyRef;
      const secret = named(objects, 'Secret', name);
      if (secret.data?.[key] === undefined && secret.stringData?.[key] === undefined) {
        throw new Error(`${container.name}: ${variable.name} names key ${key}, which Secret ${name} does not have`);
      }
      set(variable.name, { value: SECRET_STAND_IN, from: 'secret', ref: { name, key } });
    } else if (source.fieldRef?.fieldPath === 'metadata.name') {
      set(variable.name, { value: podName, from: 'field' });
    } else {
      throw new Error(`${container.name}: ${variable.name} comes from a source these checks do not model`);
    }
  }
  return env;
}

export const SECRET_STAND_IN = 'stand-in-for-the-real-password';

/** Runs a config loader on `env` through a proxy; returns its result and every name it read. */
export function loaderReads<T>(load: (env: Environment) => T, env: ReadonlyMap<string, EnvValue>): { config: T; read: Set<string> } {
  const read = new Set<string>();
  const plain: Record<string, string | undefined> = Object.fromEntries([...env].map(([name, { value }]) => [name, value]));
  const recording = new Proxy(plain, {
    get(target, key) {
      if (typeof key === 'string') read.add(key);
      return Reflect.get(target, key) as unknown;
    },
  });
  return { config: load(recording), read };
}
