import type { ChildProcess } from 'node:child_process';

// Waiting in tests: for a condition (until), for a while (sleep), for a line a child process
// prints (untilOutput), or for code under test to reach a chosen point and be let through
// (gate). Free of the app, so unit tests can use it too.

/** Options of {@link until}. */
export interface UntilOptions {
  /** What is waited for, as the timeout's message says it. */
  what: string;
  /** Give up after this long, in milliseconds; default 20000. */
  timeoutMs?: number;
  /** Pause between calls of the predicate, in milliseconds; default 50. */
  intervalMs?: number;
}

/** Calls `predicate` until it returns true, pausing between calls; rejects once `timeoutMs` has passed. An error it throws rejects at once. */
export async function until(predicate: () => boolean | Promise<boolean>, options: UntilOptions): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${options.what}`);
    await sleep(options.intervalMs ?? 50);
  }
}

/**
 * Resolves with the first group of `pattern` (else its whole match) once what `child` has
 * printed (stdout and stderr) matches it; rejects when the child exits first, or after
 * `timeoutMs` (default 30000). The output stays read afterwards, so that the child never blocks on it.
 */
export function untilOutput(child: ChildProcess, pattern: RegExp, options: Omit<UntilOptions, 'intervalMs'>): Promise<string> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  let output = '';
  let settled = false;
  return new Promise<string>((resolve, reject) => {
    const done = (): void => {
      settled = true;
      clearTimeout(timer);
      child.off('exit', exited);
    };
    const exited = (code: number | null): void => {
      done();
      reject(new Error(`exited ${code} before ${options.what}: ${output}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${options.what}: ${output}`));
    }, timeoutMs);
    const read = (chunk: Buffer): void => {
      if (settled) return;
      output += chunk.toString();
      const match = pattern.exec(output);
      if (match) {
        done();
        resolve(match[1] ?? match[0]);
      }
    };
    child.stdout?.on('data', read);
    child.stderr?.on('data', read);
    child.once('exit', exited);
  });
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A point where code under test pauses until the test lets it through. */
export interface Gate {
  /** Resolves once the code has reached the gate ({@link Gate.reach} or {@link Gate.pass}). */
  readonly reached: Promise<void>;
  /** For the code under test: says it has reached the gate, and goes on. */
  reach(): void;
  /** For the code under test: says it has reached the gate, and resolves once the gate is open. */
  pass(): Promise<void>;
  /** Lets the code through: what waits in {@link Gate.pass} now, and whatever passes later. */
  open(): void;
}

/** A closed gate. */
export function gate(): Gate {
  let reach!: () => void;
  const reached = new Promise<void>((resolve) => (reach = resolve));
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return {
    reached,
    reach,
    pass() {
      reach();
      return opened;
    },
    open,
  };
}
