import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runCli} from '../helpers/cli.js'
import {type PushedImage, pushImage} from '../helpers/images.js'
import {type RegistryServer, startRegistry} from '../helpers/registry.js'
import {makeTempDir} from '../helpers/tmp.js'

async function manifestFile(dir: string, ref: string, registries = ''): Promise<string> {
  const file = join(dir, 'airlock.yaml')
  await writeFile(
    file,
    `apiVersion: airlock/v1\nkind: Manifest\nmetadata:\n  name: auth-test\nspec:\n${registries}  images:\n    - ${ref}\n`,
  )
  return file
}

describe('airlock pull: Basic auth over TLS with a CA made at test time', () => {
  let reg: RegistryServer
  let img: PushedImage
  beforeAll(async () => {
    reg = await startRegistry({tls: true, auth: 'htpasswd', username: 'alice', password: 'tls-s3cret'})
    img = await pushImage(reg, {repository: 'sec/app', tag: '1', platforms: ['linux/amd64', 'linux/arm64']})
  })
  afterAll(async () => reg?.stop())

  it('pulls with --username/--password and the manifest caFile', async () => {
    const dir = await makeTempDir('airlock-auth-')
    const file = await manifestFile(
      dir,
      img.ref,
      `  registries:\n    - host: ${reg.host}\n      caFile: ${reg.caFile}\n`,
    )
    const r = await runCli([
      'pull',
      file,
      '--store',
      join(dir, 'store'),
      '--username',
      'alice',
      '--password',
      'tls-s3cret',
      '--json',
    ])
    expect(r.code, r.stderr).toBe(0)
    const res = JSON.parse(r.stdout) as {items: {platforms: string[]}[]}
    expect(res.items[0].platforms).toEqual(['linux/amd64'])
  })

  it('pulls with --password-stdin and with AIRLOCK_PASSWORD, never printing the password', async () => {
    const dir = await makeTempDir('airlock-auth-')
    const file = await manifestFile(
      dir,
      img.ref,
      `  registries:\n    - host: ${reg.host}\n      caFile: ${reg.caFile}\n`,
    )
    const stdin = await runCli(['pull', file, '--store', join(dir, 'a'), '--username', 'alice', '--password-stdin'], {
      input: 'tls-s3cret\n',
      env: {DOCKER_CONFIG: dir},
    })
    expect(stdin.code, stdin.stderr).toBe(0)
    const env = await runCli(['pull', file, '--store', join(dir, 'b'), '--username', 'alice', '--json'], {
      env: {DOCKER_CONFIG: dir, AIRLOCK_PASSWORD: 'tls-s3cret'},
    })
    expect(env.code, env.stderr).toBe(0)
    expect((JSON.parse(env.stdout) as {items: {platforms: string[]}[]}).items[0].platforms).toEqual(['linux/amd64'])
    for (const r of [stdin, env]) expect(r.stdout + r.stderr).not.toContain('tls-s3cret')
  })

  it('takes the credentials from the Docker config and the CA from --ca-file', async () => {
    const dir = await makeTempDir('airlock-auth-')
    await mkdir(join(dir, 'docker'))
    await writeFile(
      join(dir, 'docker', 'config.json'),
      JSON.stringify({auths: {[`https://${reg.host}`]: {auth: Buffer.from('alice:tls-s3cret').toString('base64')}}}),
    )
    const file = await manifestFile(dir, img.ref)
    const r = await runCli(['pull', file, '--store', join(dir, 'store'), '--ca-file', reg.caFile!], {
      env: {DOCKER_CONFIG: join(dir, 'docker')},
    })
    expect(r.code, r.stderr).toBe(0)
  })

  it('fails without credentials, naming the registry and not falling back to HTTP', async () => {
    const dir = await makeTempDir('airlock-auth-')
    const file = await manifestFile(dir, img.ref)
    let r = await runCli(['pull', file, '--store', join(dir, 'store'), '--ca-file', reg.caFile!], {
      env: {DOCKER_CONFIG: dir},
    })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`manifest ${img.ref}: HTTP 401`)
    expect(r.stderr).toMatch(/--username and --password/)
    // Without the CA: a certificate error, no plain HTTP retry.
    r = await runCli(['pull', file, '--store', join(dir, 'store'), '--username', 'alice', '--password', 'tls-s3cret'], {
      env: {DOCKER_CONFIG: dir},
    })
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/certificate/i)
    expect(r.stderr).not.toContain('tls-s3cret')
  })
})

describe('airlock pull: Bearer token auth', () => {
  let reg: RegistryServer
  let img: PushedImage
  beforeAll(async () => {
    reg = await startRegistry({auth: 'token', username: 'bob', password: 'tok-s3cret'})
    img = await pushImage(reg, {repository: 'tok/app', tag: '1', format: 'docker'})
  })
  afterAll(async () => reg?.stop())

  it('gets a token for the repository scope and pulls', async () => {
    const dir = await makeTempDir('airlock-token-')
    const file = await manifestFile(dir, img.ref)
    const r = await runCli([
      'pull',
      file,
      '--store',
      join(dir, 'store'),
      '--username',
      'bob',
      '--password',
      'tok-s3cret',
      '--json',
    ])
    expect(r.code, r.stderr).toBe(0)
    expect((JSON.parse(r.stdout) as {items: {digest: string}[]}).items[0].digest).toBe(img.digest)
  })

  it('says the token service refused wrong credentials, without printing them', async () => {
    const dir = await makeTempDir('airlock-token-')
    const file = await manifestFile(dir, img.ref)
    const r = await runCli(['pull', file, '--store', join(dir, 'store'), '--username', 'bob', '--password', 'wrong-pw'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/refused the credentials/)
    expect(r.stdout + r.stderr).not.toContain('wrong-pw')
  })
})
