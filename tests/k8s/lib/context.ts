/**
 * What the policy checks share: every rendered target (the base and each overlay) as a Context,
 * with the two programs' workloads, containers and environment as the config loaders read it, and
 * the facts the manifests must agree with (the Dockerfile, the compose file).
 */
import { loadApiConfig, loadWorkerConfig, type ApiConfig, type WorkerConfig } from '@inflow/shared';
import { containerEnv, loaderReads, type EnvValue } from './env.ts';
import type { K8sObject } from './kustomize.ts';
import { containerWithImage, ofKind, selects, workloads, type IContainer, type Workload } from './objects.ts';
import { composeServices, dockerfile } from './repo.ts';

export const NAMESPACE = 'inflow';
export const API_IMAGE = 'inflow-api';
export const WORKER_IMAGE = 'inflow-worker';
/** The official node image's `node` user, which the Dockerfile's `USER node` runs as. */
export const NODE_UID = 1000;
/** PostgreSQL keeps this many connections for superusers (superuser_reserved_connections). */
export const RESERVED_CONNECTIONS = 3;

export const docker = dockerfile();
export const compose = [...composeServices().values()];

export interface App {
  workload: Workload;
  container: IContainer;
  env: Map<string, EnvValue>;
  read: Set<string>;
}

export interface Context {
  target: string;
  objects: K8sObject[];
  workloads: Workload[];
  api: App & { config: ApiConfig };
  worker: App & { config: WorkerConfig };
  /** Redis and PostgreSQL run in the cluster (not the external-data overlay). */
  inClusterData: boolean;
}

export function appOf(objects: K8sObject[], image: string): { workload: Workload; container: IContainer; env: Map<string, EnvValue> } {
  const matching = workloads(objects).filter((workload) => containerWithImage(workload, image) !== undefined);
  if (matching.length !== 1 || matching[0] === undefined) throw new Error(`expected one workload running ${image}, found ${matching.length}`);
  const workload = matching[0];
  const container = containerWithImage(workload, image);
  if (container === undefined) throw new Error(`no ${image} container`);
  return { workload, container, env: containerEnv(container, objects, `${workload.name}-5d8f7c9b6d-x7k2p`) };
}

export function contextOf(target: string, objects: K8sObject[]): Context {
  const api = appOf(objects, API_IMAGE);
  const worker = appOf(objects, WORKER_IMAGE);
  const apiLoad = loaderReads(loadApiConfig, api.env);
  const workerLoad = loaderReads(loadWorkerConfig, worker.env);
  return {
    target,
    objects,
    workloads: workloads(objects),
    api: { ...api, config: apiLoad.config, read: apiLoad.read },
    worker: { ...worker, config: workerLoad.config, read: workerLoad.read },
    inClusterData: ofKind(objects, 'StatefulSet').length > 0,
  };
}

/** The workloads whose pods a selector selects. */
export function selected(context: Context, selector: Parameters<typeof selects>[0]): Workload[] {
  return context.workloads.filter((workload) => selects(selector, workload.labels));
}

export function minReplicas(context: Context, workload: Workload): number {
  const hpa = ofKind(context.objects, 'HorizontalPodAutoscaler').find((candidate) => candidate.spec.scaleTargetRef.name === workload.name);
  const scaled = ofKind(context.objects, 'ScaledObject').find((candidate) => candidate.spec.scaleTargetRef.name === workload.name);
  return hpa?.spec.minReplicas ?? scaled?.spec.minReplicaCount ?? workload.replicas ?? 1;
}

export function maxReplicas(context: Context, workload: Workload): number {
  const hpa = ofKind(context.objects, 'HorizontalPodAutoscaler').find((candidate) => candidate.spec.scaleTargetRef.name === workload.name);
  const scaled = ofKind(context.objects, 'ScaledObject').find((candidate) => candidate.spec.scaleTargetRef.name === workload.name);
  return hpa?.spec.maxReplicas ?? scaled?.spec.maxReplicaCount ?? workload.replicas ?? 1;
}

export const sorted = (values: Iterable<string>) => [...values].sort();

