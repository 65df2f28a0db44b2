import {hostname} from 'node:os'

import {UsageError} from '../errors.js'

/** `--listen ADDR:PORT`, parsed once. */
export interface ListenAddress {
  /** As the user wrote it, for messages. */
  text: string
  /** Address to bind; `0.0.0.0` or `::` for every interface. */
  host: string
  port: number
}

/** All interfaces, port 5000: the distribution registry's usual port, reachable by the nodes the seed serves. */
export const DEFAULT_LISTEN = '0.0.0.0:5000'

/** `HOST:PORT`, `[V6]:PORT` or `:PORT` (every interface). */
export function parseListen(text: string): ListenAddress {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim())
  const port = m ? Number(m[3]) : NaN
  if (!m || port > 65535) {
    throw new UsageError(`--listen must be ADDR:PORT (e.g. 0.0.0.0:5000, 127.0.0.1:5000, [::]:5000), got "${text}"`)
  }
  const host = m[1] ?? (m[2] === '' ? '0.0.0.0' : m[2])
  return {text, host, port}
}

/**
 * The URL nodes reach the server at when `--advertise` does not say: the
 * listen address, or this machine's host name when that is every interface
 * (`0.0.0.0` is no address a node can dial).
 */
export function defaultAdvertiseUrl(listen: ListenAddress, tls: boolean): string {
  let host = listen.host
  if (host === '0.0.0.0' || host === '::') host = hostname()
  else if (host.includes(':')) host = `[${host}]`
  return `${tls ? 'https' : 'http'}://${host}:${listen.port}`
}
