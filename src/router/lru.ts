/**
 * A bounded least-recently-used map. A JavaScript Map iterates in insertion order, so re-inserting
 * an entry on every hit keeps the least recently used one first, where eviction takes it.
 */
export class Lru<K, V> {
  readonly #max: number;
  readonly #map = new Map<K, V>();

  /** @param max entries kept; 0 keeps nothing (caching off). */
  constructor(max: number) {
    if (!Number.isInteger(max) || max < 0) throw new RangeError(`LRU size must be a non-negative integer, got ${max}`);
    this.#max = max;
  }

  /** The value for `key`, now the most recently used; undefined when absent. */
  get(key: K): V | undefined {
    const map = this.#map;
    const v = map.get(key);
    if (v !== undefined) {
      map.delete(key);
      map.set(key, v);
    }
    return v;
  }

  /** Stores `key`, evicting the least recently used entry when full. */
  set(key: K, value: V): void {
    const map = this.#map;
    if (map.has(key)) map.delete(key);
    else if (map.size >= this.#max) {
      if (this.#max === 0) return;
      map.delete(map.keys().next().value as K);
    }
    map.set(key, value);
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  get size(): number {
    return this.#map.size;
  }

  get max(): number {
    return this.#max;
  }

  clear(): void {
    this.#map.clear();
  }
}
