/** A dependency a process needs to do its work, and how to tell that it answers. */
export interface DependencyCheck {
  name: string;
  check: () => Promise<void>;
}

export type CheckResult = { ok: true; ms: number } | { ok: false; error: string };

export interface Readiness {
  ok: boolean;
  /** By dependency name. */
  checks: Record<string, CheckResult>;
  /** Names of the dependencies that failed, for a message a person can act on. */
  failed: string[];
}

/** Runs every check at once; a failure keeps its reason. */
export async function checkReadiness(checks: readonly DependencyCheck[]): Promise<Readiness> {
  const results = await Promise.all(
    checks.map(async ({ name, check }): Promise<[string, CheckResult]> => {
      const startedAt = performance.now();
      try {
        await check();
        return [name, { ok: true, ms: Math.round(performance.now() - startedAt) }];
      } catch (error) {
        return [name, { ok: false, error: error instanceof Error ? error.message : String(error) }];
      }
    }),
  );
  const failed = results.filter(([, result]) => !result.ok).map(([name]) => name);
  return { ok: failed.length === 0, checks: Object.fromEntries(results), failed };
}
