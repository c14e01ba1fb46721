// The catalogue is shared/src/errors.ts, one for both apps. This name is kept only for
// web/web.routes.ts, which the page's own change moves to @inflow/shared; delete it then.
export { notFound } from '@inflow/shared';
