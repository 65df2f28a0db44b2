import type {IncomingMessage, ServerResponse} from 'node:http'
import {pipeline, type Readable} from 'node:stream'

/**
 * One body answer for blobs and files alike: HEAD, a whole body (200) or a
 * single byte range (206), and 416 for a range outside the content.
 */

/** A byte range, both ends inclusive. */
export interface ByteRange {
  start: number
  end: number
}

/**
 * The range a `Range` header asks of `size` bytes: `undefined` to send the
 * whole body (no header, a unit other than bytes, several ranges, or syntax
 * we do not read: RFC 9110 lets a server ignore those), `'unsatisfiable'`
 * when no byte of it exists.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header)
  if (!m || (m[1] === '' && m[2] === '')) return undefined
  if (m[1] === '') {
    // A suffix: the last N bytes.
    const n = Number(m[2])
    if (n === 0) return 'unsatisfiable'
    return {start: Math.max(0, size - n), end: size - 1}
  }
  const start = Number(m[1])
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
  if (m[2] !== '' && Number(m[2]) < start) return undefined
  if (start >= size) return 'unsatisfiable'
  return {start, end}
}

export interface Body {
  size: number
  /** `Content-Type` and any other headers of a success. */
  headers: Record<string, string>
  /** A stream of bytes `start` to `end` inclusive. */
  open(start: number, end: number): Readable
}

/** Answer GET or HEAD with `body`, honouring `Range`. Hot path: bytes flow straight from `open` to the socket. */
export function sendBody(req: IncomingMessage, res: ServerResponse, body: Body): void {
  for (const [k, v] of Object.entries(body.headers)) res.setHeader(k, v)
  res.setHeader('Accept-Ranges', 'bytes')
  const range = parseRange(req.headers.range, body.size)
  if (range === 'unsatisfiable') {
    res.statusCode = 416
    res.setHeader('Content-Range', `bytes */${body.size}`)
    res.setHeader('Content-Length', 0)
    res.end()
    return
  }
  const {start, end} = range ?? {start: 0, end: body.size - 1}
  if (range) {
    res.statusCode = 206
    res.setHeader('Content-Range', `bytes ${start}-${end}/${body.size}`)
  }
  const length = end - start + 1
  res.setHeader('Content-Length', length)
  if (req.method === 'HEAD' || length === 0) {
    res.end()
    return
  }
  // A client that goes away destroys the response, and pipeline then closes the source.
  pipeline(body.open(start, end), res, () => {})
}
