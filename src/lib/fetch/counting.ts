import {Transform} from 'node:stream'

/**
 * A pass-through stage that reports each chunk's length, for progress and
 * byte totals. A stage of the pipeline rather than a 'data' listener, which
 * would start the flow before the consumer reads.
 */
export function countingStream(onBytes: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      onBytes(chunk.length)
      cb(null, chunk)
    },
  })
}
