import type {Readable} from 'node:stream'

/** A stream of content as a source answered a request for it. */
export interface OpenedStream {
  stream: Readable
  /** Offset of the first byte sent: the one asked for when the source could resume, else 0. */
  start: number
  /** Size of the whole content when the source said so. */
  total?: number
  /** Where the bytes come from, for messages (the URL that answered, after redirects). */
  url: string
  /**
   * The same bytes, already read, when the source had them in hand at once
   * (a small file on disk); a reader may take them instead of the stream.
   */
  bytes?: Buffer
  /**
   * The source has no byte at the offset asked for (HTTP 416): the content
   * ends before it, after `total` bytes when the source said how many.
   * `stream` is then empty, and `start` is the offset asked for.
   */
  pastEnd?: boolean
}

/**
 * Opens content from byte `offset`; may start at 0 instead when the source
 * cannot resume. Called again for every attempt, so a retry gets a new stream.
 */
export type Opener = (offset: number) => Promise<OpenedStream>
