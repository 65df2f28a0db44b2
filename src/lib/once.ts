/**
 * One in-flight promise per key: a second caller for the same digest waits
 * for the first. A failure is forgotten so that a later call can try again.
 */
export class Once<K, V> {
  private readonly inflight = new Map<K, Promise<V>>()

  run(key: K, fn: () => Promise<V>): Promise<V> {
    let p = this.inflight.get(key)
    if (!p) {
      p = fn().catch((err) => {
        this.inflight.delete(key)
        throw err
      })
      this.inflight.set(key, p)
    }
    return p
  }
}
