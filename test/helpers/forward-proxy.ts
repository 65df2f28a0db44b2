import {spawn} from 'node:child_process'
import {closeSync, openSync} from 'node:fs'
import {readFile, writeFile} from 'node:fs/promises'
import {connect} from 'node:net'
import {join} from 'node:path'

import {stopChild, trackChild} from './cleanup.js'
import {waitFor} from './http.js'
import {freePort} from './ports.js'
import {makeTempDir} from './tmp.js'

export interface ForwardProxy {
  /** http://127.0.0.1:PORT, the value for HTTP_PROXY / HTTPS_PROXY */
  url: string
  /** 127.0.0.1:PORT */
  host: string
  port: number
  logFile: string
  /**
   * Every request line the proxy received, in order: `GET http://HOST/PATH HTTP/1.1`
   * for plain HTTP, `CONNECT HOST:PORT HTTP/1.1` for tunnels.
   */
  requests(): Promise<string[]>
  stop(): Promise<void>
}

export interface ForwardProxyOpts {
  /** Ports CONNECT may reach. Unset: any port (tinyproxy allows all when no ConnectPort is configured). */
  connectPorts?: number[]
}

/**
 * Debian tinyproxy in the foreground on a free loopback port, as the forward
 * proxy HTTP_PROXY / HTTPS_PROXY point at. Its log (level Connect and up)
 * records one `Request (file descriptor N): ...` line per request.
 */
export async function startForwardProxy(opts: ForwardProxyOpts = {}): Promise<ForwardProxy> {
  const dir = await makeTempDir('airlock-tinyproxy-')
  const port = await freePort()
  const host = `127.0.0.1:${port}`
  const logFile = join(dir, 'tinyproxy.log')
  const conf = [
    // As root tinyproxy drops to User/Group; root keeps the temp dir writable. Not root: it stays who it is.
    ...(process.getuid?.() === 0 ? ['User root', 'Group root'] : []),
    `Port ${port}`,
    'Listen 127.0.0.1',
    'Timeout 120',
    `LogFile "${logFile}"`,
    'LogLevel Info',
    'MaxClients 100',
    'Allow 127.0.0.1',
    'DisableViaHeader Yes',
    ...(opts.connectPorts ?? []).map((p) => `ConnectPort ${p}`),
    '',
  ].join('\n')
  const confFile = join(dir, 'tinyproxy.conf')
  await writeFile(confFile, conf)

  const outFd = openSync(join(dir, 'tinyproxy.out'), 'a')
  const child = spawn('tinyproxy', ['-d', '-c', confFile], {stdio: ['ignore', outFd, outFd], detached: true})
  closeSync(outFd)
  trackChild(child)
  const exited = new Promise<never>((_, reject) => {
    child.once('error', reject)
    child.once('exit', (code, sig) => reject(new Error(`tinyproxy exited early (${code ?? sig})`)))
  })
  exited.catch(() => undefined)
  const stop = () => stopChild(child)
  // A bare TCP connect, so readiness leaves no request line in the log.
  const accepts = () =>
    new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1')
      s.once('connect', () => {
        s.destroy()
        resolve(true)
      })
      s.once('error', () => resolve(false))
    })
  try {
    await Promise.race([exited, waitFor(`tinyproxy at ${host}`, accepts, 15_000)])
  } catch (err) {
    await stop()
    const log =
      (await readFile(logFile, 'utf8').catch(() => '')) +
      (await readFile(join(dir, 'tinyproxy.out'), 'utf8').catch(() => ''))
    throw new Error(`${(err as Error).message}\n${log}`, {cause: err})
  }
  return {
    url: `http://${host}`,
    host,
    port,
    logFile,
    stop,
    async requests() {
      const text = await readFile(logFile, 'utf8').catch(() => '')
      return [...text.matchAll(/Request \(file descriptor \d+\): (.*)$/gm)].map((m) => m[1].trim())
    },
  }
}
