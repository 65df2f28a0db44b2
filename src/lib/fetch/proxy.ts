import {HttpsProxyAgent} from 'hpagent'
import http from 'node:http'
import https from 'node:https'
import type {Duplex} from 'node:stream'
import tls from 'node:tls'

function env(name: string): string | undefined {
  return process.env[name] ?? process.env[name.toLowerCase()] ?? undefined
}

/** NO_PROXY matching as curl does: `*`, exact hosts, domain suffixes, optional `:port`. */
export function bypassesProxy(url: URL, noProxy = env('NO_PROXY')): boolean {
  if (!noProxy) return false
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase()
  const port = url.port || (url.protocol === 'https:' ? '443' : '80')
  for (const raw of noProxy.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase()
    if (!entry) continue
    if (entry === '*') return true
    const m = /^(.*?)(?::(\d+))?$/.exec(entry)!
    const name = m[1].replace(/^\*?\./, '')
    if (m[2] && m[2] !== port) continue
    if (host === name || host.endsWith(`.${name}`)) return true
  }
  return false
}

export function proxyFor(url: URL): string | undefined {
  if (bypassesProxy(url)) return undefined
  return url.protocol === 'https:' ? env('HTTPS_PROXY') : env('HTTP_PROXY')
}

export interface Agents {
  http: http.Agent
  https: https.Agent
}

/**
 * Plain HTTP through a proxy the way curl does it: each request goes to the
 * proxy in absolute form (`GET http://host/path`). Not a CONNECT tunnel, which
 * proxies commonly allow to port 443 only (Squid's and tinyproxy's stock configs).
 */
class ForwardingAgent extends http.Agent {
  private readonly proxy: URL

  constructor(proxy: string, opts: http.AgentOptions) {
    super(opts)
    this.proxy = new URL(proxy)
  }

  addRequest(req: http.ClientRequest, options: http.ClientRequestArgs): void {
    const host = options.host ?? options.hostname ?? 'localhost'
    const target = `http://${host.includes(':') ? `[${host}]` : host}${options.port ? `:${options.port}` : ''}`
    // The request line is written after addRequest, so the absolute form still takes.
    req.path = new URL(req.path, target).toString()
    if (this.proxy.username || this.proxy.password) {
      const basic = Buffer.from(`${decodeURIComponent(this.proxy.username)}:${decodeURIComponent(this.proxy.password)}`).toString('base64')
      req.setHeader('proxy-authorization', `Basic ${basic}`)
    }
    const port = this.proxy.port || (this.proxy.protocol === 'https:' ? '443' : '80')
    // @ts-expect-error addRequest's options are internal to node:http and not in its typings.
    super.addRequest(req, {...options, host: this.proxy.hostname, hostname: this.proxy.hostname, port})
  }

  // An https:// proxy is spoken to over TLS, as hpagent does for CONNECT.
  override createConnection(options: tls.ConnectionOptions, callback?: (err: Error | null, socket: Duplex) => void): Duplex | null | undefined {
    if (this.proxy.protocol !== 'https:') return super.createConnection(options, callback)
    return tls.connect({...options, servername: this.proxy.hostname})
  }
}

const keepAlive = {keepAlive: true, maxSockets: 64, maxFreeSockets: 16, scheduling: 'lifo' as const}
const direct: Agents = {http: new http.Agent(keepAlive), https: new https.Agent(keepAlive)}
const viaProxy = new Map<string, Agents>()

/** Keep-alive agents for a URL, through the proxy the environment names for it. */
export function agentsFor(url: URL): Agents {
  const proxy = proxyFor(url)
  if (!proxy) return direct
  let agents = viaProxy.get(proxy)
  if (!agents) {
    agents = {http: new ForwardingAgent(proxy, keepAlive), https: new HttpsProxyAgent({...keepAlive, proxy})}
    viaProxy.set(proxy, agents)
  }
  return agents
}
