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
  /** A stream of bytes `start` to `end` inclusive; a rejection becomes a 500 while no byte went out. */
  open(start: number, end: number): Readable | Promise<Readable>
}

/** Why a body could not be opened, by response: the access log says it. */
export const bodyProblems = new WeakMap<ServerResponse, string>()

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
  // Pipelined requests are answered in order: a response waits, without a socket, until the one before it
  // ended, and one still waiting when the client goes is never closed (Node emits no 'close' on it). So
  // nothing is opened before the response owns the socket: a burst of them holds no descriptor and no buffer.
  if (res.socket) void stream(res, body, start, end)
  else res.once('socket', () => void stream(res, body, start, end))
}

async function stream(res: ServerResponse, body: Body, start: number, end: number): Promise<void> {
  let src: Readable
  try {
    src = await body.open(start, end)
  } catch (err) {
    // Why, for the server's log; the client learns no path.
    bodyProblems.set(res, (err as Error).message)
    if (res.headersSent || res.destroyed) return void res.destroy()
    for (const name of res.getHeaderNames()) res.removeHeader(name)
    res.statusCode = 500
    const text = Buffer.from('internal error: the content cannot be read\n')
    res.setHeader('Content-Type', 'text/plain; charset=utf-8')
    res.setHeader('Content-Length', text.length)
    res.end(text)
    return
  }
  // The client went while it was opened.
  if (res.destroyed) return void src.destroy()
  // A client that goes away destroys the response, and pipeline then closes the source.
  pipeline(src, res, () => {})
}
