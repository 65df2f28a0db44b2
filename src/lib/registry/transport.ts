import type {IncomingHttpHeaders} from 'node:http'
import type {Readable} from 'node:stream'

import type {Got} from 'got'

import {FailureError, isAirlockError} from '../errors.js'
import {connectionError, createHttp, redactUrl} from '../fetch/http.js'
import {type ConnectionOptions, isCertificateError, suggestTrust} from '../fetch/tls.js'
import {isLoopbackRegistry} from '../oci/reference.js'
import {MAX_ERROR_BODY} from './errors.js'

/**
 * The registry transport: one got instance (keep-alive, proxies, extra CAs,
 * verified or not), single HTTP exchanges with their bodies capped, and the
 * scheme: HTTPS, or plain HTTP where the contract allows it (loopback, or
 * `insecure`). No retries and no auth here: the client adds them.
 */

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

export interface RegistryResponse {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
  /** The URL that answered, after redirects. */
  url: string
}

export interface TransportOptions extends ConnectionOptions {
  registry: string
  /** host[:port] requests go to. */
  host: string
}

/** What one exchange sends and how it reads the answer. */
export interface ExchangeRequest {
  headers?: Record<string, string>
  body?: Buffer | string | Readable
  followRedirect: boolean
  /** Cap on the bytes read from a 2xx body. */
  maxBody: number
}

export class RegistryTransport {
  private http?: Promise<Got>

  constructor(private readonly opts: TransportOptions) {}

  got(): Promise<Got> {
    this.http ??= createHttp({caFiles: this.opts.caFiles, insecure: this.opts.insecure})
    return this.http
  }

  /** One HTTP exchange, body read up to `maxBody` (an error's up to MAX_ERROR_BODY). */
  async exchange(url: string, method: HttpMethod, req: ExchangeRequest): Promise<RegistryResponse> {
    const {headers = {}, body, followRedirect, maxBody} = req
    const got = await this.got()
    const hasBody = method === 'POST' || method === 'PUT' || method === 'PATCH'
    const stream = got.stream(url, {
      method,
      headers,
      followRedirect,
      body: hasBody ? (body ?? '') : undefined,
    } as never)
    try {
      const res = await new Promise<import('got').Response>((resolve, reject) => {
        stream.once('response', resolve)
        stream.once('error', reject)
      })
      const cap = res.statusCode >= 200 && res.statusCode < 300 ? maxBody : MAX_ERROR_BODY
      const chunks: Buffer[] = []
      let n = 0
      // Read to the end, a HEAD's empty body too: the socket goes back to the keep-alive pool only
      // once the response ended, and the destroy() below would close it before (a pull's referrer
      // lookups are thousands of HEADs: one connection each, where a few carry them all).
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        n += chunk.length
        if (n > cap) {
          if (cap === MAX_ERROR_BODY) break
          throw new FailureError(
            `${new URL(url).host}: the answer to ${method} ${redactUrl(url)} is larger than ${cap} bytes`,
          )
        }
        chunks.push(chunk)
      }
      return {status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), url: res.url}
    } catch (err) {
      if (isAirlockError(err)) throw err
      throw connectionError(err, url)
    } finally {
      stream.destroy()
    }
  }

  /**
   * The scheme, found by `check` (GET /v2/ at a base URL): `https://host`,
   * else `http://host` where plain HTTP is allowed and HTTPS failed for a
   * reason other than a certificate or a registry answer. One attempt each.
   */
  async scheme(check: (base: string) => Promise<void>): Promise<string> {
    const https = `https://${this.opts.host}`
    try {
      await check(https)
      return https
    } catch (err) {
      const httpAllowed = this.opts.insecure || isLoopbackRegistry(this.opts.host)
      suggestTrust(err, this.opts.registry, "with --ca-file, or caFile in the manifest's spec.registries")
      if (!httpAllowed || isCertificateError(err) || (isAirlockError(err) && err.kind === 'registry')) throw err
      const http = `http://${this.opts.host}`
      // When both fail, the plain HTTP error is the one reported (a loopback registry that is down).
      await check(http)
      // Loopback registries use plain HTTP as Docker allows, without a word; `insecure` was announced already.
      return http
    }
  }
}
