import type { Leadership } from 'graphql-lease-cache';
import type { Logger } from '../logger.js';

/** A job that runs every `everyMs` milliseconds on the instance that holds the jobs' lease. */
export interface BackgroundJob {
  name: string;
  everyMs: number;
  run(): Promise<unknown>;
}

/** Options of {@link startBackgroundJobs}. */
export interface BackgroundJobsOptions {
  /** The jobs' lease; null without Redis, where this instance is taken to be the only one and runs them. */
  leadership: Leadership | null;
  /** How often the lease is renewed, or sought by the others, in milliseconds (a third of its TTL). */
  renewMs: number;
  logger: Logger;
  /** Runs, before anything periodic, each time this instance takes the lease (and at start if it does). */
  onLead(): Promise<unknown>;
  jobs: readonly BackgroundJob[];
}

/** The background jobs of an instance: running or not, by the lease. */
export interface BackgroundJobs {
  /** True while this instance holds the lease (as of its last renewal). */
  readonly leading: boolean;
  /** Tries the lease again at once (the start-up wait); resolves when that attempt and what it ran are done. */
  tick(): Promise<void>;
  /** Stops the timer, waits for the job under way, and gives the lease up. */
  stop(): Promise<void>;
}

/**
 * Runs the jobs that write (recoveries, backfills, sweeps) on one instance of those sharing a
 * Redis: the holder of a Redis lease (a {@link Leadership}, the mechanism of the write-behind
 * worker's leader). Each instance renews or seeks it every `renewMs`; the one that takes it runs
 * `onLead`, then each job when due; when the holder stops (it resigns) or dies (its lease
 * expires), another takes over within `renewMs` (or the TTL). While Redis does not answer, no
 * instance runs them: they finish what crashes left behind and can wait. The first attempt runs
 * before this resolves, so that an instance that leads has run `onLead` before it serves.
 */
export async function startBackgroundJobs(options: BackgroundJobsOptions): Promise<BackgroundJobs> {
  const { leadership, logger } = options;
  const due = new Map(options.jobs.map((job) => [job, Date.now() + job.everyMs]));
  let leading = false;
  let saidFollowing = false;
  let running: Promise<void> | null = null;
  let stopped = false;

  async function attempt(): Promise<void> {
    let won = false;
    if (leadership) {
      const reply = await leadership.acquire().catch((error: unknown) => {
        if (leading) logger.warn({ err: error }, 'the background jobs lease could not be renewed (Redis): they pause');
        return 'lost' as const;
      });
      won = reply === 'won';
      if (reply === 'lost' && leading) logger.info('this instance no longer runs the background jobs');
      if (reply === 'lost' && !saidFollowing) {
        saidFollowing = true;
        logger.info('another instance runs the background jobs (or Redis does not answer)');
      }
      leading = reply !== 'lost';
    } else {
      won = !leading;
      leading = true;
    }
    if (stopped || !leading) return;
    if (won) {
      saidFollowing = false;
      logger.info({ holder: leadership?.holder ?? null }, 'this instance runs the background jobs');
      await options.onLead().catch((error: unknown) => logger.warn({ err: error }, 'the background jobs run on taking the lease failed'));
      for (const job of options.jobs) due.set(job, Date.now() + job.everyMs);
    }
    for (const job of options.jobs) {
      if ((due.get(job) ?? 0) > Date.now() || stopped) continue;
      due.set(job, Date.now() + job.everyMs);
      await job
        .run()
        .catch((error: unknown) => logger.warn({ err: error, job: job.name }, 'a background job failed; it runs again when due'));
    }
  }

  const tick = (): Promise<void> => (running ??= attempt().finally(() => (running = null)));
  await tick();
  const timer = setInterval(() => void tick(), options.renewMs);
  timer.unref();
  return {
    get leading() {
      return leading;
    },
    tick,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
      leading = false;
      await leadership?.resign();
    },
  };
}
