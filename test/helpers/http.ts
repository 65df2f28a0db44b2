import {request as httpRequest} from 'node:http'
import {request as httpsRequest} from 'node:https'

// A minimal HTTP client for the harness itself, independent of src/ so the
// servers can be driven (and their readiness checked) without the code under test.

export interface HarnessResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

export interface HarnessRequest {
  method?: string
  headers?: Record<string, string>
  body?: Buffer | string
  ca?: string | Buffer
  timeoutMs?: number
}

export function harnessRequest(url: string, opts: HarnessRequest = {}): Promise<HarnessResponse> {
  const u = new URL(url)
  const send = u.protocol === 'https:' ? httpsRequest : httpRequest
  const body = typeof opts.body === 'string' ? Buffer.from(opts.body) : opts.body
  const headers: Record<string, string> = {...opts.headers}
  if (body && headers['content-length'] === undefined) headers['content-length'] = String(body.length)
  return new Promise((resolve, reject) => {
    const req = send(
      u,
      {
        method: opts.method ?? 'GET',
        headers,
        agent: false,
        ...(u.protocol === 'https:' && opts.ca ? {ca: opts.ca} : {}),
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('error', reject)
        res.on('end', () => resolve({status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks)}))
      },
    )
    req.setTimeout(opts.timeoutMs ?? 30_000, () => req.destroy(new Error(`timeout: ${opts.method ?? 'GET'} ${url}`)))
    req.on('error', reject)
    req.end(body)
  })
}

/** Polls until check() resolves true; throws with what was last seen after timeoutMs. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  describe?: () => Promise<string>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  for (let delay = 20; ; delay = Math.min(delay * 1.5, 250)) {
    try {
      if (await check()) return
    } catch (err) {
      last = err instanceof Error ? err.message : String(err)
    }
    if (Date.now() > deadline) {
      const more = describe ? await describe().catch(() => '') : ''
      throw new Error(`${what} not ready after ${timeoutMs} ms${last ? ` (${last})` : ''}${more ? `\n${more}` : ''}`)
    }
    await new Promise((r) => setTimeout(r, delay))
  }
}
