/** Typed views of rendered objects, and the small pieces of Kubernetes semantics the checks need. */
import type { IScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import type { IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { INamespace } from 'kubernetes-models/v1/Namespace';
import type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import type { ISecret } from 'kubernetes-models/v1/Secret';
import type { IService } from 'kubernetes-models/v1/Service';
import type { K8sObject } from './kustomize.ts';

export type { IConfigMap, IContainer, IDeployment, IHorizontalPodAutoscaler, INamespace, INetworkPolicy, IPodDisruptionBudget, IScaledObject, ISecret, IService, IStatefulSet };

export type LabelSelector = NonNullable<IDeployment['spec']>['selector'];
export type Labels = Readonly<Record<string, string>>;

interface Kinds {
  Namespace: INamespace;
  ConfigMap: IConfigMap;
  Secret: ISecret;
  Service: IService;
  Deployment: IDeployment;
  StatefulSet: IStatefulSet;
  PodDisruptionBudget: IPodDisruptionBudget;
  NetworkPolicy: INetworkPolicy;
  HorizontalPodAutoscaler: IHorizontalPodAutoscaler;
  ScaledObject: IScaledObject;
}

/** The objects of one kind (schema.test.ts proves they match kubernetes-models' interfaces). */
export function ofKind<K extends keyof Kinds>(objects: readonly K8sObject[], kind: K): (Kinds[K] & { metadata: { name: string } })[] {
  return objects.filter((object) => object.kind === kind) as unknown as (Kinds[K] & { metadata: { name: string } })[];
}

export function named<K extends keyof Kinds>(objects: readonly K8sObject[], kind: K, name: string): Kinds[K] & { metadata: { name: string } } {
  const found = ofKind(objects, kind).find((object) => object.metadata.name === name);
  if (found === undefined) throw new Error(`no ${kind} named ${name}`);
  return found;
}

/** A Deployment or StatefulSet: what owns pods. */
export interface Workload {
  kind: 'Deployment' | 'StatefulSet';
  name: string;
  replicas: number | undefined;
  selector: LabelSelector;
  template: IPodTemplateSpec;
  labels: Labels;
  object: IDeployment | IStatefulSet;
}

export function workloads(objects: readonly K8sObject[]): Workload[] {
  return [...ofKind(objects, 'Deployment'), ...ofKind(objects, 'StatefulSet')].map((object) => {
    const spec = object.spec;
    if (spec === undefined) throw new Error(`${object.kind} ${object.metadata.name} has no spec`);
    return {
      kind: object.kind,
      name: object.metadata.name,
      replicas: spec.replicas,
      selector: spec.selector,
      template: spec.template,
      labels: spec.template.metadata?.labels ?? {},
      object,
    };
  });
}

/** The one container of a workload whose image is NAME (any registry, any tag). */
export function containerWithImage(workload: Workload, imageName: string): IContainer | undefined {
  return workload.template.spec?.containers.find((container) => imageRepository(container.image ?? '') === imageName);
}

/** "registry.example.com/team/inflow-api:1.0.0" → "inflow-api". */
export function imageRepository(image: string): string {
  const withoutDigest = image.split('@', 1)[0] ?? '';
  const last = withoutDigest.split('/').at(-1) ?? '';
  return last.split(':', 1)[0] ?? '';
}

export function imageTag(image: string): string | undefined {
  const last = (image.split('@', 1)[0] ?? '').split('/').at(-1) ?? '';
  return last.includes(':') ? last.slice(last.indexOf(':') + 1) : undefined;
}

/** Label selector semantics (matchLabels and matchExpressions, ANDed; empty matches all). */
export function selects(selector: LabelSelector | undefined, labels: Labels): boolean {
  if (selector === undefined) return false;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (labels[key] !== value) return false;
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const value = labels[key];
    const ok =
      operator === 'In' ? value !== undefined && values.includes(value)
      : operator === 'NotIn' ? value === undefined || !values.includes(value)
      : operator === 'Exists' ? value !== undefined
      : operator === 'DoesNotExist' ? value === undefined
      : false;
    if (!ok) return false;
  }
  return true;
}

export function selectsMap(selector: Labels | undefined, labels: Labels): boolean {
  return selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([key, value]) => labels[key] === value);
}

/** The container port a probe, a Service or a policy names: by number or by name. */
export function containerPort(containers: readonly IContainer[], port: number | string): { name?: string; containerPort: number; protocol: string } | undefined {
  for (const container of containers) {
    for (const candidate of container.ports ?? []) {
      if (typeof port === 'number' ? candidate.containerPort === port : candidate.name === port) {
        return { ...(candidate.name === undefined ? {} : { name: candidate.name }), containerPort: candidate.containerPort, protocol: candidate.protocol ?? 'TCP' };
      }
    }
  }
  return undefined;
}

/** Bytes in a Kubernetes memory quantity ("256Mi", "1Gi", "500M"). */
export function quantityBytes(quantity: string | number): number {
  return sized(quantity, { '': 1, k: 1e3, M: 1e6, G: 1e9, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30 });
}

/** Bytes in a Redis size ("256mb" is 256 x 1024 x 1024, "256m" 256,000,000: see redis.conf). */
export function redisBytes(size: string): number {
  return sized(size.toLowerCase(), { '': 1, k: 1e3, kb: 2 ** 10, m: 1e6, mb: 2 ** 20, g: 1e9, gb: 2 ** 30 });
}

function sized(quantity: string | number, units: Readonly<Record<string, number>>): number {
  if (typeof quantity === 'number') return quantity;
  const match = /^(\d+(?:\.\d+)?)([A-Za-z]*)$/.exec(quantity.trim());
  const unit = units[match?.[2] ?? '?'];
  if (match === null || unit === undefined) throw new Error(`not a size: ${quantity}`);
  return Number(match[1]) * unit;
}

/** Every container of a pod template, init containers included. */
export function allContainers(template: IPodTemplateSpec): IContainer[] {
  return [...(template.spec?.initContainers ?? []), ...(template.spec?.containers ?? [])];
}
