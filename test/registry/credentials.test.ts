import {chmod, mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterEach, beforeAll, describe, expect, it} from 'vitest'

import {dockerCredentials, normalizeAuthKey} from '../../src/lib/registry/credentials.js'
import {makeTempDir} from '../helpers/tmp.js'

let dir: string
const oldPath = process.env.PATH

beforeAll(async () => {
  dir = await makeTempDir('airlock-creds-')
  const bin = join(dir, 'bin')
  await mkdir(bin)
  // A credential helper speaking the docker-credential protocol: server on stdin, JSON out.
  const helper = join(bin, 'docker-credential-fake')
  await writeFile(
    helper,
    `#!/bin/sh\nread server\ncase "$server" in\n  helped.example) echo '{"ServerURL":"helped.example","Username":"hu","Secret":"hs"}';;\n  token.example) echo '{"Username":"<token>","Secret":"idt"}';;\n  *) echo "credentials not found in native keychain"; exit 1;;\nesac\n`,
  )
  await chmod(helper, 0o755)
})

afterEach(() => {
  process.env.PATH = oldPath
})

async function config(content: object): Promise<string> {
  const p = join(dir, `config-${Math.random().toString(36).slice(2)}.json`)
  await writeFile(p, JSON.stringify(content))
  return p
}

describe('normalizeAuthKey', () => {
  it('maps Docker Hub names and strips schemes and paths', () => {
    expect(normalizeAuthKey('https://index.docker.io/v1/')).toBe('docker.io')
    expect(normalizeAuthKey('registry-1.docker.io')).toBe('docker.io')
    expect(normalizeAuthKey('http://127.0.0.1:5000/v2/')).toBe('127.0.0.1:5000')
  })
})

describe('dockerCredentials', () => {
  it('decodes a base64 auth entry, with a colon in the password', async () => {
    const p = await config({auths: {'https://reg.example:5000': {auth: Buffer.from('alice:pa:ss').toString('base64')}}})
    expect(await dockerCredentials('reg.example:5000', p)).toEqual({username: 'alice', password: 'pa:ss'})
  })

  it('finds Docker Hub under its legacy key', async () => {
    const p = await config({auths: {'https://index.docker.io/v1/': {username: 'u', password: 'p'}}})
    expect(await dockerCredentials('docker.io', p)).toEqual({username: 'u', password: 'p'})
  })

  it('asks credHelpers first, then credsStore, and falls back to auths', async () => {
    process.env.PATH = `${join(dir, 'bin')}:${oldPath}`
    const p = await config({
      credHelpers: {'helped.example': 'fake'},
      credsStore: 'fake',
      auths: {'other.example': {auth: Buffer.from('o:p').toString('base64')}},
    })
    expect(await dockerCredentials('helped.example', p)).toEqual({username: 'hu', password: 'hs'})
    expect(await dockerCredentials('token.example', p)).toEqual({token: 'idt'})
    // The store has nothing for it ("credentials not found"): auths is used.
    expect(await dockerCredentials('other.example', p)).toEqual({username: 'o', password: 'p'})
  })

  it('is anonymous without a config or an entry', async () => {
    expect(await dockerCredentials('x.example', join(dir, 'missing.json'))).toBeUndefined()
    expect(await dockerCredentials('x.example', await config({auths: {}}))).toBeUndefined()
  })

  it('names a helper that is not installed', async () => {
    const p = await config({credHelpers: {'x.example': 'nonexistent-helper'}})
    await expect(dockerCredentials('x.example', p)).rejects.toThrow(/docker-credential-nonexistent-helper/)
  })
})
