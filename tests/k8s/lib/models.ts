/**
 * kubernetes-models' classes for every kind deploy/k8s renders, and a strict check on top of
 * their validate(): the generated validators check types, required fields and enums, but let
 * unknown fields through (a misspelt `readinesProbe` would pass). The strict check runs the
 * same validator on a recording proxy of the document: the validator reads every property its
 * schema knows, at every depth (and every key of a map), so a property it never read is one the
 * schema does not have.
 */
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import type { K8sObject } from './kustomize.ts';

interface ModelClass {
  readonly apiVersion: string;
  readonly kind: string;
  new (data: never): { validate(): void };
}

const MODELS: readonly ModelClass[] = [
  Namespace,
  ConfigMap,
  Secret,
  Service,
  Deployment,
  StatefulSet,
  PodDisruptionBudget,
  NetworkPolicy,
  HorizontalPodAutoscaler,
  ScaledObject,
];

export function modelFor(object: Pick<K8sObject, 'apiVersion' | 'kind'>): ModelClass | undefined {
  return MODELS.find((model) => model.apiVersion === object.apiVersion && model.kind === object.kind);
}

/** The model's own validation: throws a ValidationError naming the paths. */
export function validateWithModel(model: ModelClass, object: unknown): void {
  new model(object as never).validate();
}

/**
 * JSON pointers of the properties in `object` that the model's schema does not know, at any
 * depth. Empty when every property is known.
 */
export function unknownFields(model: ModelClass, object: unknown): string[] {
  const records = new Map<object, { path: string; read: Set<string> }>();
  const wrap = (value: unknown, path: string): unknown => {
    if (typeof value !== 'object' || value === null) return value;
    let record = records.get(value);
    if (record === undefined) {
      const read = new Set<string>();
      record = { path, read };
      records.set(value, record);
    }
    const { read } = record;
    return new Proxy(value, {
      get(target, key, receiver) {
        const result: unknown = Reflect.get(target, key, receiver);
        if (typeof key !== 'string' || !Object.hasOwn(target, key)) return result;
        read.add(key);
        return wrap(result, `${path}/${escape(key)}`);
      },
      has(target, key) {
        if (typeof key === 'string') read.add(key);
        return Reflect.has(target, key);
      },
    });
  };
  // The class's validate() with the proxy as `this`: the very function validate() runs, on data
  // that records what it reads (a Model instance would be a copy).
  const { validate } = model.prototype as { validate: (this: unknown) => void };
  validate.call(wrap(object, ''));

  const unknown: string[] = [];
  for (const [value, { path, read }] of records) {
    if (Array.isArray(value)) {
      // An element the schema never looked at (an array with no item schema) is unknown too.
      value.forEach((element: unknown, index) => {
        if (typeof element === 'object' && element !== null && !read.has(String(index))) unknown.push(`${path}/${index}`);
      });
      continue;
    }
    for (const key of Object.keys(value)) {
      if (!read.has(key)) unknown.push(`${path}/${escape(key)}`);
    }
  }
  // A property under an unknown one was never reached, so it is not listed: the outermost is.
  return unknown.sort();
}

function escape(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}
