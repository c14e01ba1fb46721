export * from './compose.ts';
export * from './http.ts';
export * from './ports.ts';
export * from './processes.ts';
export * from './services.ts';
export * from './stack.ts';
export * from './wait.ts';
export * from './worker-logs.ts';
