import {createHttp} from '../../fetch/http.js'
import type {ConnectionOptions} from '../../fetch/tls.js'

/**
 * The HTTP status an anonymous GET of `url` gets (the body is not read), or
 * undefined when nothing answered: what an installer without credentials
 * would meet at externalRepoEndpoint.
 */
export async function anonymousStatus(url: string, tls: ConnectionOptions): Promise<number | undefined> {
  const http = await createHttp(tls)
  try {
    const res = await http.get(url, {headers: {range: 'bytes=0-0'}, timeout: {request: 15_000}})
    return res.statusCode === 206 ? 200 : res.statusCode
  } catch {
    return undefined
  }
}
