/**
 * The chaos scenarios in the order they run, one file each. The whole-stack scenario (6) runs
 * last: it checks again every entry the others were promised.
 */
import type { Scenario } from '../scenario.ts';
import killReplica from './01-kill-replica.ts';
import rollingRestart from './02-rolling-restart.ts';
import workerStopped from './03-worker-stopped.ts';
import redisRestart from './04-redis-restart.ts';
import postgresRestart from './05-postgres-restart.ts';
import wholeStackDown from './06-whole-stack-down.ts';
import postgresPastRetryBudget from './07-postgres-past-retry-budget.ts';
import workerCrash from './08-worker-crash.ts';
import redisMemoryFull from './09-redis-memory-full.ts';
import rateLimit from './10-rate-limit.ts';

export const SCENARIOS: readonly Scenario[] = [
  killReplica,
  rollingRestart,
  workerStopped,
  redisRestart,
  postgresRestart,
  postgresPastRetryBudget,
  workerCrash,
  redisMemoryFull,
  rateLimit,
  wholeStackDown,
];
