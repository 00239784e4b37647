/**
 * The request a cache call is made for, when the caller passes one: the events of its reads
 * and round trips name it (events.ts), so that a subscriber can count them per request (a
 * server's own request trace can be one), and while a whole response is computed its
 * `dependencies` collect every key and tag those reads went through.
 */
export interface CacheTrace {
  /** Set while a response is computed for the response cache: the dependencies of what it read. */
  dependencies?: Set<string>;
  /** Values of entity and field reads served from this process's L1 (no round trip), added to by each fetch; unset until one is. */
  l1Hits?: number;
  /** Values (or a whole response) served past their TTL, in their grace, because the source could not answer; unset until one is. */
  graceServed?: number;
}
