import {execFile, spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {closeSync, openSync} from 'node:fs'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {makeCerts} from './certs.js'
import {stopChild, trackChild} from './cleanup.js'
import {harnessRequest, waitFor} from './http.js'
import {freePort} from './ports.js'
import {makeTempDir} from './tmp.js'
import {startTokenServer, type TokenServer} from './token-server.js'

const run = promisify(execFile)

export interface RegistryServer {
  /** 127.0.0.1:PORT */
  host: string
  /** http(s)://host */
  url: string
  /** The CA that signed the registry's certificate (TLS only). */
  caFile?: string
  username?: string
  password?: string
  auth: 'none' | 'htpasswd' | 'token'
  /** The token endpoint (auth 'token' only): its realm and every request it answered. */
  token?: TokenServer
  /** The registry's storage root (filesystem driver). */
  dataDir: string
  /** The registry's own log (stdout and stderr). */
  logFile: string
  /** The registry's process (the benchmarks read its CPU time). */
  pid?: number
  stop(): Promise<void>
}

export interface RegistryOpts {
  tls?: boolean
  auth?: 'none' | 'htpasswd' | 'token'
  username?: string
  password?: string
  /** Serve this storage root (e.g. one written by `writeTinyImages`) instead of a fresh, empty one. */
  dataDir?: string
}

/**
 * The distribution registry (Debian `docker-registry serve CONFIG`) on a free
 * loopback port: filesystem storage in a temp dir, deletes enabled, optionally
 * TLS (a fresh CA), htpasswd Basic auth, or token auth backed by an in-process
 * token endpoint that signs real JWTs. Resolves once /v2/ answers.
 */
export async function startRegistry(opts: RegistryOpts = {}): Promise<RegistryServer> {
  const auth = opts.auth ?? 'none'
  const username = auth === 'none' ? opts.username : (opts.username ?? 'airlock')
  const password = auth === 'none' ? opts.password : (opts.password ?? 'airlock-test-password')
  const dir = await makeTempDir('airlock-registry-')
  const dataDir = opts.dataDir ?? join(dir, 'data')
  const logFile = join(dir, 'registry.log')
  await mkdir(dataDir, {recursive: true})
  const port = await freePort()
  const host = `127.0.0.1:${port}`
  const url = `${opts.tls ? 'https' : 'http'}://${host}`

  const needCerts = opts.tls || auth === 'token'
  const certs = needCerts ? await makeCerts(join(dir, 'certs')) : undefined
  let token: TokenServer | undefined

  const lines = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  formatter: text',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(dataDir)}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: ${host}`,
    `  secret: ${randomBytes(16).toString('hex')}`,
    '  headers:',
    '    X-Content-Type-Options: [nosniff]',
  ]
  if (opts.tls && certs)
    lines.push(
      '  tls:',
      `    certificate: ${JSON.stringify(certs.certFile)}`,
      `    key: ${JSON.stringify(certs.keyFile)}`,
    )
  if (auth === 'htpasswd') {
    const file = join(dir, 'htpasswd')
    const {stdout} = await run('htpasswd', ['-Bbn', username!, password!])
    await writeFile(file, stdout)
    lines.push('auth:', '  htpasswd:', '    realm: airlock-test', `    path: ${JSON.stringify(file)}`)
  } else if (auth === 'token' && certs) {
    // Tokens are signed with the CA's key and carry the CA certificate in x5c;
    // the registry trusts exactly that certificate.
    token = await startTokenServer({
      username: username!,
      password: password!,
      service: 'airlock-test-registry',
      issuer: 'airlock-test-token-issuer',
      signCertFile: certs.caFile,
      signKeyFile: certs.caKeyFile,
      tls: opts.tls ? {certFile: certs.certFile, keyFile: certs.keyFile} : undefined,
    })
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${token.realm}`,
      `    service: ${token.service}`,
      `    issuer: ${token.issuer}`,
      `    rootcertbundle: ${JSON.stringify(certs.caFile)}`,
    )
  }
  const config = join(dir, 'config.yml')
  await writeFile(config, `${lines.join('\n')}\n`)

  const logFd = openSync(logFile, 'a')
  const child = spawn('docker-registry', ['serve', config], {
    stdio: ['ignore', logFd, logFd],
    detached: true,
    env: {...process.env, OTEL_TRACES_EXPORTER: 'none'},
  })
  closeSync(logFd)
  trackChild(child)
  const exited = new Promise<never>((_, reject) => {
    child.once('error', reject)
    child.once('exit', (code, sig) => reject(new Error(`docker-registry exited early (${code ?? sig})`)))
  })
  exited.catch(() => undefined)
  const ca = certs ? await readFile(certs.caFile) : undefined
  const stop = async () => {
    await stopChild(child)
    await token?.stop()
  }
  try {
    await Promise.race([
      exited,
      waitFor(
        `docker-registry at ${url}`,
        async () => {
          const r = await harnessRequest(`${url}/v2/`, {ca, timeoutMs: 2000})
          return r.status === 200 || r.status === 401
        },
        20_000,
      ),
    ])
  } catch (err) {
    await stop()
    const log = await readFile(logFile, 'utf8').catch(() => '')
    throw new Error(`${(err as Error).message}\n${log.split('\n').slice(-20).join('\n')}`, {cause: err})
  }
  return {
    host,
    url,
    caFile: opts.tls ? certs?.caFile : undefined,
    username,
    password,
    auth,
    token,
    dataDir,
    logFile,
    pid: child.pid,
    stop,
  }
}
