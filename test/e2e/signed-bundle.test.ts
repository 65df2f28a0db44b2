import {execFile} from 'node:child_process'
import {createPrivateKey, randomBytes, scryptSync} from 'node:crypto'
import {appendFile, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import nacl from 'tweetnacl'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {sha256Hex} from '../helpers/bundle-fixture.js'
import {runCli} from '../helpers/cli.js'
import {harnessRequest} from '../helpers/http.js'
import {pushImage} from '../helpers/images.js'
import {freePort} from '../helpers/ports.js'
import {type RegistryServer, startRegistry} from '../helpers/registry.js'
import {makeTempDir} from '../helpers/tmp.js'

const exec = promisify(execFile)

/**
 * A key in cosign's encrypted format (`cosign generate-key-pair`; cosign is not in Debian), made here as
 * sigstore/sigstore pkg/cryptoutils (GeneratePEMEncodedECDSAKeyPair) writes it with go-securesystemslib
 * encrypted.Encrypt (checked against both sources): the JSON {kdf: {name: "scrypt", params: {N, r, p}, salt},
 * cipher: {name: "nacl/secretbox", nonce}, ciphertext}, byte fields standard base64, scrypt's standard parameters
 * (N 65536, r 8, p 1; older keys have N 32768) over a 32-byte salt give the 32-byte key of a NaCl secretbox
 * (24-byte nonce) around the PKCS#8 DER; the JSON is the body of an ENCRYPTED SIGSTORE PRIVATE KEY block (older
 * cosign wrote ENCRYPTED COSIGN PRIVATE KEY, still read).
 */
function cosignKey(pkcs8Pem: string, password: string, N = 65536, type = 'SIGSTORE'): string {
  const der = createPrivateKey(pkcs8Pem).export({format: 'der', type: 'pkcs8'})
  const salt = randomBytes(32)
  const nonce = randomBytes(24)
  const key = scryptSync(password, salt, 32, {N, r: 8, p: 1, maxmem: 256 << 20})
  const json = JSON.stringify({
    kdf: {name: 'scrypt', params: {N, r: 8, p: 1}, salt: salt.toString('base64')},
    cipher: {name: 'nacl/secretbox', nonce: nonce.toString('base64')},
    ciphertext: Buffer.from(nacl.secretbox(der, nonce, key)).toString('base64'),
  })
  const body = Buffer.from(json)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
  return `-----BEGIN ENCRYPTED ${type} PRIVATE KEY-----\n${body}\n-----END ENCRYPTED ${type} PRIVATE KEY-----\n`
}

describe('a signed bundle (bundle --sign-key, --bundle-key)', () => {
  let work: string
  const keys = {sec1: '', pkcs8: '', pub: '', otherPub: '', cosign: '', cosignPub: ''}
  let signed: string
  let source: RegistryServer
  let target: RegistryServer

  async function build(out: string, ...args: string[]): Promise<string> {
    const r = await runCli(
      [
        'build',
        join(work, 'manifest.yaml'),
        '--store',
        join(work, 'store'),
        '--out',
        join(work, out),
        '--no-importer',
        ...args,
      ],
      {env: {AIRLOCK_SIGN_PASSWORD: 'hunter2'}},
    )
    expect(r.code, r.stderr).toBe(0)
    return join(work, out)
  }

  beforeAll(async () => {
    work = await makeTempDir('e2e-signed-')
    const k = (f: string) => join(work, f)
    await exec('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', k('sec1.pem')])
    await exec('openssl', ['pkcs8', '-topk8', '-nocrypt', '-in', k('sec1.pem'), '-out', k('pkcs8.pem')])
    await exec('openssl', ['ec', '-in', k('sec1.pem'), '-pubout', '-out', k('pub.pem')])
    await exec('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', k('other.pem')])
    await exec('openssl', ['ec', '-in', k('other.pem'), '-pubout', '-out', k('other.pub')])
    await exec('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', k('c.pem')])
    await exec('openssl', ['pkcs8', '-topk8', '-nocrypt', '-in', k('c.pem'), '-out', k('c8.pem')])
    await exec('openssl', ['ec', '-in', k('c.pem'), '-pubout', '-out', k('cosign.pub')])
    await writeFile(k('cosign.key'), cosignKey(await readFile(k('c8.pem'), 'utf8'), 'hunter2'))
    Object.assign(keys, {
      sec1: k('sec1.pem'),
      pkcs8: k('pkcs8.pem'),
      pub: k('pub.pem'),
      otherPub: k('other.pub'),
      cosign: k('cosign.key'),
      cosignPub: k('cosign.pub'),
    })
    // An image in the bundle, so that a refused import registry has something it would have pushed.
    ;[source, target] = await Promise.all([startRegistry(), startRegistry()])
    const image = await pushImage(source, {repository: 'team/app', tag: '1', layers: 1, layerSize: 20_000})
    await writeFile(
      join(work, 'manifest.yaml'),
      `apiVersion: airlock/v1\nkind: Manifest\nmetadata: {name: signed, version: "1"}\nspec:\n  images:\n    - ${image.ref}\n`,
    )
    signed = await build('signed', '--sign-key', keys.sec1)
  }, 170_000)

  afterAll(async () => {
    await Promise.all([source?.stop(), target?.stop()])
  })

  it('writes SHA256SUMS.sig that openssl accepts over the exact bytes of SHA256SUMS, and verify --bundle-key holds', async () => {
    expect(await readdir(signed)).toContain('SHA256SUMS.sig')
    await writeFile(
      join(work, 'sig.der'),
      Buffer.from(await readFile(join(signed, 'SHA256SUMS.sig'), 'utf8'), 'base64'),
    )
    const {stdout} = await exec('openssl', [
      'dgst',
      '-sha256',
      '-verify',
      keys.pub,
      '-signature',
      join(work, 'sig.der'),
      join(signed, 'SHA256SUMS'),
    ])
    expect(stdout).toContain('Verified OK')
    const r = await runCli(['verify', signed, '--bundle-key', keys.pub])
    expect(r.code, r.stderr).toBe(0)
  })

  it('a PKCS#8 key signs as the SEC1 one does, and a bundle written again unsigned loses its old .sig', async () => {
    const dir = await build('pkcs8', '--sign-key', keys.pkcs8)
    expect((await runCli(['verify', dir, '--bundle-key', keys.pub])).code).toBe(0)
    await build('pkcs8')
    expect(await readdir(dir)).not.toContain('SHA256SUMS.sig')
  })

  it("a key in cosign's encrypted format signs a bundle that verify --bundle-key cosign.pub accepts; a wrong password is exit 2", async () => {
    const dir = await build('cosign', '--sign-key', keys.cosign)
    const r = await runCli(['verify', dir, '--bundle-key', keys.cosignPub])
    expect(r.code, r.stderr).toBe(0)
    const wrong = await runCli(
      [
        'build',
        join(work, 'manifest.yaml'),
        '--store',
        join(work, 'store'),
        '--out',
        join(work, 'wrong'),
        '--no-importer',
        '--sign-key',
        keys.cosign,
      ],
      {env: {AIRLOCK_SIGN_PASSWORD: 'nope'}},
    )
    expect(wrong.code).toBe(2)
    expect(wrong.stderr).toContain('password')
    // An older cosign key (N 32768, ENCRYPTED COSIGN PRIVATE KEY) still opens; scrypt parameters go-securesystemslib
    // would not open are refused before scrypt runs.
    const c8 = await readFile(join(work, 'c8.pem'), 'utf8')
    await writeFile(join(work, 'legacy.key'), cosignKey(c8, 'hunter2', 32768, 'COSIGN'))
    const legacy = await build('legacy', '--sign-key', join(work, 'legacy.key'))
    expect((await runCli(['verify', legacy, '--bundle-key', keys.cosignPub])).code).toBe(0)
    await writeFile(join(work, 'odd.key'), cosignKey(c8, 'hunter2', 16384))
    const odd = await runCli(
      [
        'build',
        join(work, 'manifest.yaml'),
        '--store',
        join(work, 'store'),
        '--out',
        join(work, 'odd'),
        '--no-importer',
        '--sign-key',
        join(work, 'odd.key'),
      ],
      {env: {AIRLOCK_SIGN_PASSWORD: 'hunter2'}},
    )
    expect(odd.code, odd.stderr).toBe(2)
    expect(odd.stderr).toContain('unsupported scrypt parameters (N 16384, r 8, p 1)')
  })

  it('serve --bundle-key checks each --base too: a delta whose base lost its .sig is not served', async () => {
    const delta = await build('delta', '--sign-key', keys.sec1, '--since', signed)
    const base = join(work, 'base-unsigned')
    await exec('cp', ['-a', signed, base])
    await rm(join(base, 'SHA256SUMS.sig'))
    const port = await freePort()
    const args = (b: string) => [
      'serve',
      delta,
      '--base',
      b,
      '--bundle-key',
      keys.pub,
      '--listen',
      `127.0.0.1:${port}`,
      '--cache-dir',
      join(work, 'delta-cache'),
    ]
    // Everything signed: taken (--print-mirror-config stops before listening).
    const ok = await runCli([...args(signed), '--print-mirror-config', 'containerd'])
    expect(ok.code, ok.stderr).toBe(0)
    const r = await runCli(args(base), {timeoutMs: 60_000})
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr).toContain(`${base}: SHA256SUMS.sig is missing`)
    expect(r.stderr).not.toMatch(/serving/)
  })

  describe('refused, exit 2, nothing written', () => {
    const cases: [string, () => Promise<{dir: string; key: string}>][] = [
      [
        'a re-hashed tampered archive',
        async () => {
          const dir = await build('tampered', '--sign-key', keys.sec1)
          await appendFile(join(dir, 'offline-files.tar.gz'), Buffer.alloc(512))
          const sums = await readFile(join(dir, 'SHA256SUMS'), 'utf8')
          const sha = sha256Hex(await readFile(join(dir, 'offline-files.tar.gz')))
          await writeFile(
            join(dir, 'SHA256SUMS'),
            sums.replace(/^[0-9a-f]{64}(  offline-files\.tar\.gz)$/m, `${sha}$1`),
          )
          return {dir, key: keys.pub}
        },
      ],
      [
        'a missing SHA256SUMS.sig',
        async () => {
          const dir = await build('unsigned-sig', '--sign-key', keys.sec1)
          await rm(join(dir, 'SHA256SUMS.sig'))
          return {dir, key: keys.pub}
        },
      ],
      ['another key', async () => ({dir: signed, key: keys.otherPub})],
    ]
    for (const [what, make] of cases) {
      it(`${what}: by verify, import nginx (root untouched), import registry (nothing pushed) and serve (nothing served)`, async () => {
        const {dir, key} = await make()
        const v = await runCli(['verify', dir, '--bundle-key', key])
        expect(v.code, v.stderr).toBe(2)
        expect(v.stderr).toMatch(/SHA256SUMS\.sig/)
        const root = await makeTempDir('e2e-signed-root-')
        const n = await runCli(['import', 'nginx', dir, '--root', root, '--bundle-key', key])
        expect(n.code, n.stderr).toBe(2)
        expect(await readdir(root)).toEqual([])
        const r = await runCli([
          'import',
          'registry',
          dir,
          '--registry',
          target.host,
          '--insecure',
          '--bundle-key',
          key,
        ])
        expect(r.code, r.stderr).toBe(2)
        expect(r.stderr).toMatch(/SHA256SUMS\.sig/)
        const catalog = await harnessRequest(`${target.url}/v2/_catalog`)
        expect(JSON.parse(catalog.body.toString('utf8'))).toEqual({repositories: []})
        // A serve that took the bundle would listen until stopped: the timeout (exit 137) fails the test.
        const cache = await makeTempDir('e2e-signed-cache-')
        const s = await runCli(
          ['serve', dir, '--listen', `127.0.0.1:${await freePort()}`, '--cache-dir', cache, '--bundle-key', key],
          {timeoutMs: 60_000},
        )
        expect(s.code, s.stderr).toBe(2)
        expect(s.stderr).toMatch(/SHA256SUMS\.sig/)
        expect(s.stderr).not.toMatch(/serving/)
        expect(await readdir(cache)).toEqual([])
      })
    }
  })
})
