// The package's entry point for code that composes the API itself (the benchmark's synchronous
// peer, tests/bench/probes/sync-api.ts): the app and its composition root. The program is main.ts.
export { createApp, type AppDependencies } from './app.ts';
export { createDependencies, type ApiDependencies } from './dependencies.ts';
