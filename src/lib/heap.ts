import {setFlagsFromString} from 'node:v8'

/**
 * V8's garbage collector tuned for a command that moves thousands of small
 * things: a young generation kept at its initial size, and an old one
 * collected once it has grown by half its live size (V8's default lets it
 * reach several times that). Node's defaults suit a long-lived server; for
 * a run of thousands of requests they let garbage pile up to three times
 * what is live (a pull of 4,000 images peaked at 230 MB with 30 MB alive).
 * The cost is more, smaller collections: a few percent of a run's time.
 * While a large body streams (see `streamingHeap`), the old generation may
 * grow to several times its live size instead: the chunks of a stream are
 * garbage at once, but with the tight limit a 400 MB blob cost thirty full
 * collections of the same live heap (1.4 s of CPU) where V8's own limit
 * costs two. How far it may grow depends on what else the command holds
 * (STREAMING_GROWTH).
 *
 * Only flags V8 reads each time it sizes a space are set, so they work when
 * set from inside the process (the standalone executable takes no node
 * flags); the sizes fixed at start-up (`--max-semi-space-size` and the like)
 * would do nothing here.
 */
export const HEAP_FLAGS = ['--semi-space-growth-factor=1', '--heap-growing-percent=50'] as const

/**
 * While a large body streams: how far the old generation may grow past its
 * live size before a full collection (`--heap-growing-percent`), by what
 * streams. A download (pull) holds little else: V8's largest factor, 4x (on
 * the scale set 200 cost 17% more CPU for 3 MB less peak memory). An upload
 * or an archive check (import registry) holds the archive's plan beside it:
 * 3x (4x peaked at 152-154 MB where 3x peaked at 130-135 MB, for the same
 * CPU, 0.77x that of the tight limit). With both at once, the smaller.
 */
export const STREAMING_GROWTH = {download: 300, upload: 200} as const

export type StreamingKind = keyof typeof STREAMING_GROWTH

/** The size from which a body counts as large for `streamingHeap`. */
export const LARGE_BODY_BYTES = 1024 * 1024

let tuned = false
/** Large bodies streaming now, by kind. */
const streams: Record<StreamingKind, number> = {download: 0, upload: 0}

/** Apply HEAP_FLAGS to this process, once. `AIRLOCK_V8_DEFAULTS=1` leaves V8 as it is (to compare). */
export function tuneHeap(env: NodeJS.ProcessEnv = process.env): boolean {
  if (tuned || env.AIRLOCK_V8_DEFAULTS === '1') return tuned
  applyFlags()
  tuned = true
  return tuned
}

function applyFlags(): void {
  for (const flag of HEAP_FLAGS) setFlagsFromString(flag)
  const growth = streamingGrowth(streams)
  if (growth !== undefined) setFlagsFromString(`--heap-growing-percent=${growth}`)
}

/** The growing percent while `active` bodies of each kind stream: the smallest of their kinds', undefined when none does. */
export function streamingGrowth(active: Readonly<Record<StreamingKind, number>>): number | undefined {
  const kinds = (Object.keys(active) as StreamingKind[]).filter((k) => active[k] > 0)
  return kinds.length === 0 ? undefined : Math.min(...kinds.map((k) => STREAMING_GROWTH[k]))
}

/**
 * A large body (`size` bytes, LARGE_BODY_BYTES or more) starts streaming:
 * its kind's STREAMING_GROWTH applies until every body that asked has called
 * the function returned (once; more calls do nothing), then HEAP_FLAGS
 * again. Nothing changes when tuneHeap did not apply the flags, or for a
 * smaller body (thousands of small ones are what HEAP_FLAGS are for).
 */
export function streamingHeap(size: number | undefined, kind: StreamingKind = 'download'): () => void {
  if (!tuned || size === undefined || size < LARGE_BODY_BYTES) return () => {}
  if (streams[kind]++ === 0) applyFlags()
  let ended = false
  return () => {
    if (ended) return
    ended = true
    if (--streams[kind] === 0) applyFlags()
  }
}

/**
 * Apply HEAP_FLAGS again, if tuneHeap applied them: a worker thread's start
 * sets V8's flags back to the command line's, for the whole process, and the
 * young generation then grows to its default maximum (16 MiB a half).
 */
export function retuneHeap(): void {
  if (tuned) applyFlags()
}
