/**
 * One in-flight promise per key: a second caller for the same digest waits
 * for the first. A failure is forgotten so that a later call can try again.
 * With `keep: false` a success is forgotten too: only calls that overlap
 * share a run (for large values, such as manifest bytes, that a long run
 * must not hold for every key it ever saw).
 */
export class Once<K, V> {
  private readonly inflight = new Map<K, Promise<V>>()

  constructor(private readonly opts: {keep?: boolean} = {}) {}

  run(key: K, fn: () => Promise<V>): Promise<V> {
    let p = this.inflight.get(key)
    if (!p) {
      p = fn().catch((err) => {
        this.inflight.delete(key)
        throw err
      })
      this.inflight.set(key, p)
      if (this.opts.keep === false)
        void p.then(
          () => this.inflight.get(key) === p && this.inflight.delete(key),
          () => {},
        )
    }
    return p
  }
}
