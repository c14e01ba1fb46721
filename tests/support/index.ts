export * from './ports.ts';
export * from './processes.ts';
export * from './services.ts';
export * from './wait.ts';
