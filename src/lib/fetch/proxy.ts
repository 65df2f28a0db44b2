import http from 'node:http'
import https from 'node:https'

import {HttpsProxyAgent} from 'hpagent'
import {HttpProxyAgent} from 'http-proxy-agent'

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
 * One pool of connections per host for the whole process (every got instance passes these
 * agents). As many may stay open idle as may be busy: a pull's small requests (manifests,
 * referrer lookups) come in bursts wider than `--concurrency`, and with fewer free slots than
 * sockets every burst closed the surplus only for the next one to open it again.
 */
const keepAlive = {keepAlive: true, maxSockets: 64, maxFreeSockets: 64, scheduling: 'lifo' as const}
const direct: Agents = {http: new http.Agent(keepAlive), https: new https.Agent(keepAlive)}
const viaProxy = new Map<string, Agents>()

/**
 * Agents that go through `proxy`: plain HTTP in absolute form (`GET
 * http://host/path`, as curl does; proxies commonly allow CONNECT to port 443
 * only), HTTPS through a CONNECT tunnel. `options` carry keep-alive settings
 * and, for HTTPS, the TLS settings of the target.
 */
export function proxyAgents(proxy: string, options: https.AgentOptions): Agents {
  return {http: new HttpProxyAgent(proxy, options), https: new HttpsProxyAgent({...options, proxy})}
}

/** Keep-alive agents for a URL, through the proxy the environment names for it. */
export function agentsFor(url: URL): Agents {
  const proxy = proxyFor(url)
  if (!proxy) return direct
  let agents = viaProxy.get(proxy)
  if (!agents) {
    agents = proxyAgents(proxy, keepAlive)
    viaProxy.set(proxy, agents)
  }
  return agents
}
