/** Hits and misses of one entity type or field coordinate. */
export interface HitMissCount {
  name: string;
  hits: number;
  misses: number;
}

/**
 * Running hit and miss counts per entity type (`User`) and field coordinate
 * (`Product.averageRating`) since start, behind the `cacheStats` query. The Prometheus
 * counters carry the same numbers for scraping; this keeps them readable without a scrape.
 */
export class CacheStats {
  readonly #counts = new Map<string, HitMissCount>();

  /** Adds `hits` and `misses` to `name`'s counts. */
  record(name: string, hits: number, misses: number): void {
    const entry = this.#counts.get(name) ?? { name, hits: 0, misses: 0 };
    entry.hits += hits;
    entry.misses += misses;
    this.#counts.set(name, entry);
  }

  /** Every name's counts, sorted by name. */
  snapshot(): HitMissCount[] {
    return [...this.#counts.values()].map((c) => ({ ...c })).sort((a, b) => a.name.localeCompare(b.name));
  }
}

/** hits / (hits + misses), or 0 when nothing was looked up. */
export function hitRate(count: { hits: number; misses: number }): number {
  const total = count.hits + count.misses;
  return total === 0 ? 0 : count.hits / total;
}
