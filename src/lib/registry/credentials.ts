import {spawn} from 'node:child_process'
import {readFile} from 'node:fs/promises'
import {homedir} from 'node:os'
import {join} from 'node:path'

import {UsageError} from '../errors.js'
import {normalizeRegistryHost} from '../oci/reference.js'

export interface Credentials {
  username?: string
  password?: string
  /** An identity or registry token used as a Bearer token directly. */
  token?: string
}

interface AuthEntry {
  auth?: string
  username?: string
  password?: string
  identitytoken?: string
  registrytoken?: string
}

interface DockerConfig {
  auths?: Record<string, AuthEntry>
  credHelpers?: Record<string, string>
  credsStore?: string
}

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG || join(homedir(), '.docker'), 'config.json')
}

/** `https://host:5000/v1/` -> `host:5000`; Docker Hub's names -> `docker.io`. */
export function normalizeAuthKey(key: string): string {
  const host = key
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase()
  return normalizeRegistryHost(host)
}

async function readConfig(path: string): Promise<DockerConfig | undefined> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new UsageError(`cannot read the Docker config ${path}: ${(err as Error).message}`)
  }
  try {
    return JSON.parse(text) as DockerConfig
  } catch {
    throw new UsageError(`the Docker config ${path} is not valid JSON`)
  }
}

function fromEntry(e: AuthEntry): Credentials | undefined {
  if (e.registrytoken) return {token: e.registrytoken}
  if (e.auth) {
    const decoded = Buffer.from(e.auth, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    if (colon > 0) return {username: decoded.slice(0, colon), password: decoded.slice(colon + 1)}
  }
  if (e.username && e.password) return {username: e.username, password: e.password}
  if (e.identitytoken) return {token: e.identitytoken}
  return undefined
}

/** Run `docker-credential-<helper> get` with the server on stdin. */
export function runCredentialHelper(helper: string, server: string): Promise<Credentials | undefined> {
  return new Promise((resolve, reject) => {
    const child = spawn(`docker-credential-${helper}`, ['get'], {stdio: ['pipe', 'pipe', 'pipe']})
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')))
    child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')))
    child.on('error', (e: NodeJS.ErrnoException) => {
      reject(new UsageError(`credential helper docker-credential-${helper} could not run: ${e.code ?? e.message}`))
    })
    child.on('close', (code) => {
      if (code !== 0) {
        // The helper's way of saying "no credentials for this server".
        if (/credentials not found/i.test(out + err)) return resolve(undefined)
        return reject(
          new UsageError(`credential helper docker-credential-${helper} failed for ${server} (exit ${code})`),
        )
      }
      try {
        const j = JSON.parse(out) as {Username?: string; Secret?: string}
        if (!j.Secret) return resolve(undefined)
        if (j.Username === '<token>') return resolve({token: j.Secret})
        resolve({username: j.Username, password: j.Secret})
      } catch {
        reject(new UsageError(`credential helper docker-credential-${helper} printed no JSON for ${server}`))
      }
    })
    child.stdin.end(server)
  })
}

/**
 * Credentials for a registry (as users name it: `docker.io`, `host:port`)
 * from the Docker config: `credHelpers`, then `credsStore`, then `auths`.
 */
export async function dockerCredentials(
  registry: string,
  configPath = dockerConfigPath(),
): Promise<Credentials | undefined> {
  const cfg = await readConfig(configPath)
  if (!cfg) return undefined
  const want = normalizeAuthKey(registry)
  const server = want === 'docker.io' ? 'https://index.docker.io/v1/' : want
  const helper = Object.entries(cfg.credHelpers ?? {}).find(([k]) => normalizeAuthKey(k) === want)?.[1]
  if (helper) return runCredentialHelper(helper, server)
  if (cfg.credsStore) {
    const c = await runCredentialHelper(cfg.credsStore, server)
    if (c) return c
  }
  for (const [key, entry] of Object.entries(cfg.auths ?? {})) {
    if (normalizeAuthKey(key) === want) {
      const c = fromEntry(entry)
      if (c) return c
    }
  }
  return undefined
}
