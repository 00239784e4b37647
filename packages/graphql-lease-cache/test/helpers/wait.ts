// Waiting in the package's tests: for a condition (until), or for code under test to reach a
// chosen point and be let through (gate). Never for a while that is meant to be a state.

/** Options of {@link until}. */
export interface UntilOptions {
  /** What is waited for, as the timeout's message says it. */
  what: string;
  /** Give up after this long, in milliseconds; default 10000. */
  timeoutMs?: number;
  /** Pause between calls of the predicate, in milliseconds; default 5. */
  intervalMs?: number;
}

/** Calls `predicate` until it returns true, pausing between calls; rejects once `timeoutMs` has passed. An error it throws rejects at once. */
export async function until(predicate: () => boolean | Promise<boolean>, options: UntilOptions): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${options.what}`);
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 5));
  }
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
