import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runCli} from '../helpers/cli.js'
import {type RegistryServer, startRegistry} from '../helpers/registry.js'
import {type BundleFixture, makeRegistryBundle} from '../helpers/registry-bundle-fixture.js'
import {makeTempDir} from '../helpers/tmp.js'

const run = promisify(execFile)

async function skopeoDigest(reg: RegistryServer, ref: string): Promise<string> {
  const {stdout} = await run(
    'skopeo',
    ['inspect', '--raw', '--tls-verify=false', '--creds', `${reg.username}:${reg.password}`, `docker://${ref}`],
    {
      encoding: 'buffer',
      maxBuffer: 1 << 24,
    },
  )
  return `sha256:${createHash('sha256').update(stdout).digest('hex')}`
}

let bundle: BundleFixture

beforeAll(async () => {
  bundle = await makeRegistryBundle(
    [
      {ref: 'docker.io/library/app:1', layers: 2, layerSize: 100_000},
      {ref: 'ghcr.io/team/tool:0.3', platforms: ['linux/amd64', 'linux/arm64'], layers: 1, layerSize: 80_000},
    ],
    {sharedLayers: [120_000]},
  )
})

describe('airlock import registry: TLS with htpasswd', () => {
  let reg: RegistryServer
  beforeAll(async () => {
    reg = await startRegistry({tls: true, auth: 'htpasswd', username: 'alice', password: 'pa55-w0rd-tls'})
  })
  afterAll(async () => reg?.stop())

  it('pushes with --username/--password and --ca-file; skopeo reads every target at bundle.json digests', async () => {
    const r = await runCli([
      'import',
      'registry',
      bundle.dir,
      '--registry',
      reg.host,
      '--namespace',
      'seed',
      '--ca-file',
      reg.caFile!,
      '--username',
      'alice',
      '--password',
      'pa55-w0rd-tls',
      '--json',
    ])
    expect(r.code, r.stderr).toBe(0)
    const rows = (JSON.parse(r.stdout) as {items: {source: string; target: string; digest: string}[]}).items
    expect(rows).toHaveLength(2)
    for (const [k, row] of rows.entries()) expect(await skopeoDigest(reg, row.target)).toBe(bundle.images[k].digest)
    expect(r.stderr).not.toContain('pa55-w0rd-tls')
  })

  it('takes the password from --password-stdin or AIRLOCK_PASSWORD, never printing it', async () => {
    // A trailing CRLF, as a file written on Windows would end, is not part of the password.
    const stdin = await runCli(
      [
        'import',
        'registry',
        bundle.dir,
        '--registry',
        reg.host,
        '--namespace',
        'stdin',
        '--ca-file',
        reg.caFile!,
        '--username',
        'alice',
        '--password-stdin',
      ],
      {input: 'pa55-w0rd-tls\r\n', env: {AIRLOCK_PASSWORD: 'not-this-one'}},
    )
    expect(stdin.code, stdin.stderr).toBe(0)
    expect(await skopeoDigest(reg, `${reg.host}/stdin/library/app:1`)).toBe(bundle.images[0].digest)
    const env = await runCli(
      [
        'import',
        'registry',
        bundle.dir,
        '--registry',
        reg.host,
        '--namespace',
        'env',
        '--ca-file',
        reg.caFile!,
        '--username',
        'alice',
        '--json',
      ],
      {
        env: {AIRLOCK_PASSWORD: 'pa55-w0rd-tls'},
      },
    )
    expect(env.code, env.stderr).toBe(0)
    expect(await skopeoDigest(reg, `${reg.host}/env/library/app:1`)).toBe(bundle.images[0].digest)
    for (const r of [stdin, env]) {
      expect(r.stdout).not.toContain('pa55-w0rd-tls')
      expect(r.stderr).not.toContain('pa55-w0rd-tls')
    }
    // A wrong one on standard input is refused as a wrong --password is, and not echoed either.
    const wrong = await runCli(
      [
        'import',
        'registry',
        bundle.dir,
        '--registry',
        reg.host,
        '--ca-file',
        reg.caFile!,
        '--username',
        'alice',
        '--password-stdin',
      ],
      {input: 'Wr0ng-stdin-pw\n'},
    )
    expect(wrong.code).toBe(1)
    expect(wrong.stderr).toContain('the registry refused the credentials for user alice')
    expect(wrong.stderr + wrong.stdout).not.toContain('Wr0ng-stdin-pw')
  })

  it('refuses --password with --password-stdin, and a username with no password, with exit 2', async () => {
    const both = await runCli(
      [
        'import',
        'registry',
        bundle.dir,
        '--registry',
        reg.host,
        '--username',
        'alice',
        '--password',
        'x-Secret-1',
        '--password-stdin',
        '--json',
      ],
      {input: 'y\n'},
    )
    expect(both.code, both.stderr).toBe(2)
    expect(JSON.parse(both.stdout)).toMatchObject({error: {kind: 'usage', exitCode: 2}})
    expect(both.stdout).toMatch(/--password-stdin/)
    expect(both.stdout + both.stderr).not.toContain('x-Secret-1')
    const none = await runCli(['import', 'registry', bundle.dir, '--registry', reg.host, '--username', 'alice'])
    expect(none.code, none.stderr).toBe(2)
    expect(none.stderr).toContain('--username alice needs a password: --password-stdin, AIRLOCK_PASSWORD or --password')
  })

  it('takes the credentials from the Docker config', async () => {
    const dir = await makeTempDir('airlock-ireg-')
    await mkdir(join(dir, 'docker'))
    await writeFile(
      join(dir, 'docker', 'config.json'),
      JSON.stringify({auths: {[reg.host]: {auth: Buffer.from('alice:pa55-w0rd-tls').toString('base64')}}}),
    )
    const r = await runCli(
      ['import', 'registry', bundle.dir, '--registry', reg.host, '--namespace', 'fromconfig', '--ca-file', reg.caFile!],
      {
        env: {DOCKER_CONFIG: join(dir, 'docker')},
      },
    )
    expect(r.code, r.stderr).toBe(0)
    expect(await skopeoDigest(reg, `${reg.host}/fromconfig/library/app:1`)).toBe(bundle.images[0].digest)
  })

  it('fails cleanly on a wrong password, without echoing it', async () => {
    const r = await runCli([
      'import',
      'registry',
      bundle.dir,
      '--registry',
      reg.host,
      '--ca-file',
      reg.caFile!,
      '--username',
      'alice',
      '--password',
      'not-the-Secret-42',
    ])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/401|denied|unauthori[sz]ed|refused/i)
    // The credentials were given: the hint says they were refused, not to log in.
    expect(r.stderr).toContain(
      'Hint: the registry refused the credentials for user alice (from --username/--password): check the username and password',
    )
    expect(r.stderr).not.toMatch(/docker login|pass --username/)
    expect(r.stderr).not.toContain('not-the-Secret-42')
    expect(r.stdout).not.toContain('not-the-Secret-42')
    expect(r.stderr).not.toMatch(/\n\s+at /) // no stack trace
  })

  it('refuses a certificate it cannot verify unless --insecure, and says so with --insecure', async () => {
    const refused = await runCli([
      'import',
      'registry',
      bundle.dir,
      '--registry',
      reg.host,
      '--namespace',
      'x',
      '--username',
      'alice',
      '--password',
      'pa55-w0rd-tls',
    ])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/certificate|self.signed|verify/i)
    const ok = await runCli([
      'import',
      'registry',
      bundle.dir,
      '--registry',
      reg.host,
      '--namespace',
      'insecure',
      '--insecure',
      '--username',
      'alice',
      '--password',
      'pa55-w0rd-tls',
    ])
    expect(ok.code, ok.stderr).toBe(0)
    expect(ok.stderr).toContain('--insecure')
  })
})

describe('airlock import registry: token auth', () => {
  let reg: RegistryServer
  beforeAll(async () => {
    reg = await startRegistry({auth: 'token', username: 'bob', password: 't0ken-pass'})
  })
  afterAll(async () => reg?.stop())

  it('pushes with Bearer tokens (push scope, plus pull on a mount source)', async () => {
    const r = await runCli([
      'import',
      'registry',
      bundle.dir,
      '--registry',
      reg.host,
      '--namespace',
      'tok',
      '--username',
      'bob',
      '--password',
      't0ken-pass',
      '--json',
    ])
    expect(r.code, r.stderr).toBe(0)
    const rows = (JSON.parse(r.stdout) as {items: {target: string}[]}).items
    for (const [k, row] of rows.entries()) expect(await skopeoDigest(reg, row.target)).toBe(bundle.images[k].digest)
    // The shared base layer was mounted: the token for it carried pull on the source repository.
    const log = await readFile(reg.logFile, 'utf8')
    expect(log).toMatch(/"POST \/v2\/tok\/\S+\/blobs\/uploads\/\?mount=\S+&from=tok%2F\S+ HTTP\/1\.1" 201/)
  })

  it('fails cleanly on a wrong password, without echoing it', async () => {
    const r = await runCli([
      'import',
      'registry',
      bundle.dir,
      '--registry',
      reg.host,
      '--username',
      'bob',
      '--password',
      'wr0ng-Token-Pass',
    ])
    expect(r.code).toBe(1)
    expect(r.stderr).not.toContain('wr0ng-Token-Pass')
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })
})
