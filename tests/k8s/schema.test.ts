/**
 * Every object that deploy/k8s renders validates against kubernetes-models (KEDA's models for the
 * ScaledObject): types, required fields, enums; and no field unknown to the schema, at any
 * depth (lib/models.ts says how).
 */
import t from 'tap';
import { renderAll, type K8sObject } from './lib/kustomize.ts';
import { modelFor, unknownFields, validateWithModel } from './lib/models.ts';

const rendered = renderAll();

for (const [target, objects] of rendered) {
  t.test(`${target}: every object is a known kind and validates strictly`, async (t) => {
    t.ok(objects.length > 0, 'renders objects');
    for (const object of objects) {
      const label = `${object.kind} ${object.metadata.name}`;
      const model = modelFor(object);
      if (model === undefined) {
        t.fail(`${label}: ${object.apiVersion} ${object.kind} has no kubernetes-models class here (add it to lib/models.ts)`);
        continue;
      }
      t.doesNotThrow(() => {
        validateWithModel(model, object);
      }, `${label}: kubernetes-models validate()`);
      t.same(unknownFields(model, object), [], `${label}: no unknown field`);
    }
  });
}

// The strict check itself: it must find what validate() lets through, at any depth.
t.test('the strict check finds unknown fields that validate() accepts', async (t) => {
  const base = rendered.get('base') ?? [];
  const autoscale = rendered.get('overlays/autoscale') ?? [];
  const deployment = structuredClone(base.find((object) => object.kind === 'Deployment'));
  const scaledObject = structuredClone(autoscale.find((object) => object.kind === 'ScaledObject'));
  if (deployment === undefined || scaledObject === undefined) throw new Error('no Deployment in base or ScaledObject in overlays/autoscale');

  const planted = plant(deployment, [
    ['metadata', 'lables'],
    ['spec', 'replica'],
    ['spec', 'template', 'spec', 'containers', 0, 'readinessProbe', 'httpGet', 'paht'],
    ['spec', 'template', 'spec', 'containers', 0, 'securityContext', 'capabilities', 'dorp'],
    ['spec', 'template', 'spec', 'volumes', 0, 'emptyDir', 'medum'],
  ]);
  const model = modelFor(deployment);
  if (model === undefined) throw new Error('no Deployment model');
  t.doesNotThrow(() => {
    validateWithModel(model, deployment);
  }, 'validate() alone accepts the planted fields (hence the strict check)');
  t.same(unknownFields(model, deployment), planted.sort(), 'the strict check names each planted field');

  const kedaPlanted = plant(scaledObject, [
    ['spec', 'minReplicas'],
    ['spec', 'triggers', 0, 'metdata'],
  ]);
  const kedaModel = modelFor(scaledObject);
  if (kedaModel === undefined) throw new Error('no ScaledObject model');
  t.same(unknownFields(kedaModel, scaledObject), kedaPlanted.sort(), 'and in a KEDA ScaledObject');
});

/** Sets a value at each path (the last segment is the unknown field); returns their pointers. */
function plant(object: K8sObject, paths: readonly (readonly (string | number)[])[]): string[] {
  return paths.map((path) => {
    let node: unknown = object;
    for (const segment of path.slice(0, -1)) node = (node as Record<string | number, unknown>)[segment];
    const last = path.at(-1);
    if (last === undefined || typeof node !== 'object' || node === null) throw new Error(`cannot plant ${path.join('/')}`);
    (node as Record<string | number, unknown>)[last] = 'planted';
    return `/${path.join('/')}`;
  });
}
