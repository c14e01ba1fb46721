export * from './config.ts';
export * from './database.ts';
export * from './entry.ts';
export * from './health.ts';
export * from './lifecycle.ts';
export * from './logger.ts';
export * from './queue.ts';
export * from './timeout.ts';
