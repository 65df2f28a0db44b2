import {randomBytes} from 'node:crypto'
import {readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {Spec, Validation} from '@cyclonedx/cyclonedx-library'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {fileData, makeBundle} from '../../helpers/bundle-fixture.js'
import {runCli} from '../../helpers/cli.js'
import {
  type CosignKeyPair,
  cosignKeyPair,
  cosignSignature,
  sbomArtifact,
  writePublicKey,
} from '../../helpers/referrers.js'
import {type BundleFixture, makeRegistryBundle} from '../../helpers/registry-bundle-fixture.js'
import {makeTempDir} from '../../helpers/tmp.js'

// verify --key and inspect --format cyclonedx on bundles that carry referrers,
// written by the fixture as airlock stores them (no server needed).

let tmp: string
let key: CosignKeyPair
let keyFile: string
let otherKeyFile: string
let bundle: BundleFixture

const SIGNED = 'docker.io/library/signed:1.0'
const PLAIN = 'quay.io/example/plain:2.0'

beforeAll(async () => {
  tmp = await makeTempDir('airlock-signatures-')
  key = cosignKeyPair()
  keyFile = await writePublicKey(join(tmp, 'cosign.pub'), key)
  otherKeyFile = await writePublicKey(join(tmp, 'other.pub'), cosignKeyPair())
  bundle = await makeRegistryBundle(
    [
      {
        ref: SIGNED,
        platforms: ['linux/amd64', 'linux/arm64'],
        referrers: (root) => {
          const sig = cosignSignature(key, {dockerReference: 'docker.io/library/signed', signs: root.digest})
          const sbom = sbomArtifact(root)
          const sbomSig = cosignSignature(key, {dockerReference: 'docker.io/library/signed', signs: sbom.digest})
          return [sig, sbom, sbomSig]
        },
      },
      {ref: PLAIN},
    ],
    {dir: join(tmp, 'bundle')},
  )
})

afterAll(async () => {
  if (tmp) await rm(tmp, {recursive: true, force: true})
})

interface VerifyOut {
  code: number
  /** The result on success. */
  result?: {ok: true; signatures?: {ref: string; digest: string; status: string}[]}
  /** The error document on failure. */
  error?: {kind: string; message: string; exitCode: number; details?: string[]}
}

async function verifyJson(dir: string, ...flags: string[]): Promise<VerifyOut> {
  const r = await runCli(['verify', dir, '--json', ...flags])
  const doc = JSON.parse(r.stdout)
  return {code: r.code, ...(doc.error ? {error: doc.error} : {result: doc})}
}

describe('verify --key', () => {
  it('a bundle with referrers verifies; every referrer blob is checked', async () => {
    const {code, result, error} = await verifyJson(bundle.dir)
    expect(error).toBeUndefined()
    expect(result?.ok).toBe(true)
    expect(result?.signatures).toBeUndefined()
    expect(code).toBe(0)
  })

  it('signed with the right key, unsigned for an image without signatures', async () => {
    const {code, result} = await verifyJson(bundle.dir, '--key', keyFile)
    expect(result?.signatures).toEqual([
      {ref: SIGNED, digest: bundle.images[0].digest, status: 'signed'},
      {ref: PLAIN, digest: bundle.images[1].digest, status: 'unsigned'},
    ])
    expect(code).toBe(0)
    const human = await runCli(['verify', bundle.dir, '--key', keyFile])
    expect(human.stdout).toMatch(new RegExp(`^signed +${SIGNED}@sha256:`, 'm'))
    expect(human.stdout).toMatch(new RegExp(`^unsigned +${PLAIN}@sha256:`, 'm'))
  })

  it('--require-signatures fails on the unsigned image (exit 1)', async () => {
    const {code, error} = await verifyJson(bundle.dir, '--key', keyFile, '--require-signatures')
    expect(code).toBe(1)
    expect(error?.kind).toBe('failure')
    expect(error?.details).toEqual([
      `unsigned ${PLAIN}@${bundle.images[1].digest}`,
      expect.stringMatching(new RegExp(`^${PLAIN}: unsigned`)),
    ])
  })

  it('bad with another key: exit 1, the signature named', async () => {
    const {code, error} = await verifyJson(bundle.dir, '--key', otherKeyFile)
    expect(code).toBe(1)
    const sig = bundle.images[0].referrers[0]
    expect(error?.details).toEqual([
      `bad ${SIGNED}@${bundle.images[0].digest}`,
      `${SIGNED}: signature ${sig.digest.slice(0, 19)} (${sig.tag}): the signature does not verify with this key`,
    ])
    const human = await runCli(['verify', bundle.dir, '--key', otherKeyFile])
    expect(human.code).toBe(1)
    expect(human.stdout).toMatch(new RegExp(`^bad +${SIGNED}@sha256:`, 'm'))
    expect(human.stdout).toMatch(new RegExp(`^unsigned +${PLAIN}@sha256:`, 'm'))
  })

  it('a valid signature that names another digest is bad', async () => {
    const elsewhere = `sha256:${randomBytes(32).toString('hex')}`
    const b = await makeRegistryBundle(
      [
        {
          ref: SIGNED,
          referrers: (root) => [
            cosignSignature(key, {dockerReference: 'docker.io/library/signed', signs: elsewhere, subject: root.digest}),
          ],
        },
      ],
      {dir: join(tmp, 'replayed')},
    )
    const {code, error} = await verifyJson(b.dir, '--key', keyFile)
    expect(code).toBe(1)
    expect(error?.details).toEqual([
      `bad ${SIGNED}@${b.images[0].digest}`,
      expect.stringContaining(`verifies, but signs ${elsewhere}, not this image`),
    ])
  })

  it('a key that is not a PEM public key is a usage error (exit 2)', async () => {
    const junk = join(tmp, 'junk.pub')
    await writeFile(junk, 'not a key\n')
    const {code, error} = await verifyJson(bundle.dir, '--key', junk)
    expect(code).toBe(2)
    expect(error?.message).toMatch(/not a PEM public key/)
  })

  it('a referrer whose subject in bundle.json is wrong is a problem (exit 2)', async () => {
    const dir = join(tmp, 'wrong-subject')
    const b = await makeRegistryBundle([{ref: SIGNED, referrers: (root) => [sbomArtifact(root)]}], {dir})
    const lock = JSON.parse(await readFile(join(dir, 'bundle.json'), 'utf8'))
    lock.images[0].referrers[0].subject = `sha256:${'0'.repeat(64)}`
    await writeFile(join(dir, 'bundle.json'), JSON.stringify(lock))
    const {code, error} = await verifyJson(dir)
    expect(code).toBe(2)
    const of = `${SIGNED}: referrer ${b.images[0].referrers[0].digest}`
    expect(error?.details).toEqual(
      expect.arrayContaining([
        expect.stringContaining(`${of}: index.json says its subject is ${b.images[0].digest}`),
        expect.stringContaining(`${of}: its subject sha256:${'0'.repeat(64)} is not this image`),
        expect.stringContaining(`${of}: refers to ${b.images[0].digest}`),
      ]),
    )
  })
})

describe('inspect', () => {
  it('lists every referrer under its image', async () => {
    const r = await runCli(['inspect', bundle.dir, '--json'])
    expect(r.code).toBe(0)
    const img = JSON.parse(r.stdout).images.find((i: {ref: string}) => i.ref === SIGNED)
    const [sig, sbom, sbomSig] = bundle.images[0].referrers
    expect(img.referrers).toEqual([
      {
        digest: sig.digest,
        mediaType: sig.mediaType,
        artifactType: 'application/vnd.oci.image.config.v1+json',
        size: sig.size,
        subject: bundle.images[0].digest,
        tag: sig.tag,
      },
      {
        digest: sbom.digest,
        mediaType: sbom.mediaType,
        artifactType: 'application/vnd.cyclonedx+json',
        size: sbom.size,
        subject: bundle.images[0].digest,
        tag: null,
      },
      {
        digest: sbomSig.digest,
        mediaType: sbomSig.mediaType,
        artifactType: 'application/vnd.oci.image.config.v1+json',
        size: sbomSig.size,
        subject: sbom.digest,
        tag: sbomSig.tag,
      },
    ])
    const human = await runCli(['inspect', bundle.dir])
    expect(human.stdout).toMatch(/REFERRERS \(3\)/)
    expect(human.stdout).toContain(`sha256-${sbom.digest.slice(7)}.sig`)
  })

  it('--format cyclonedx is a valid CycloneDX 1.5 document naming every digest, purl and file', async () => {
    const r = await runCli(['inspect', bundle.dir, '--format', 'cyclonedx'])
    expect(r.code).toBe(0)
    const errors = await new Validation.JsonStrictValidator(Spec.Version.v1dot5).validate(r.stdout)
    expect(errors).toBeNull()
    const bom = JSON.parse(r.stdout)
    expect(bom).toMatchObject({bomFormat: 'CycloneDX', specVersion: '1.5'})
    const [signed, plain] = bundle.images
    const hex = (d: string) => d.slice(7)
    const image = bom.components.find((c: {'bom-ref': string}) => c['bom-ref'] === SIGNED)
    expect(image.purl).toBe(
      `pkg:oci/signed@sha256%3A${hex(signed.digest)}?repository_url=docker.io/library/signed&tag=1.0`,
    )
    expect(bom.components.find((c: {'bom-ref': string}) => c['bom-ref'] === PLAIN).purl).toBe(
      `pkg:oci/plain@sha256%3A${hex(plain.digest)}?repository_url=quay.io/example/plain&tag=2.0`,
    )
    expect(image.components.map((c: {hashes: {content: string}[]}) => `sha256:${c.hashes[0].content}`)).toEqual(
      signed.referrers.map((x) => x.digest),
    )
    expect(image.components[0].purl).toBe(
      `pkg:oci/signed@sha256%3A${hex(signed.referrers[0].digest)}?repository_url=docker.io/library/signed&tag=${signed.referrers[0].tag}`,
    )
    // Every digest of the bundle's images and referrers is named in the document.
    for (const d of [signed.digest, plain.digest, ...signed.referrers.map((x) => x.digest)])
      expect(r.stdout).toContain(hex(d))
    // The same bundle gives the same document.
    expect((await runCli(['inspect', bundle.dir, '--format', 'cyclonedx'])).stdout).toBe(r.stdout)
  })

  it('--format cyclonedx names every file with its URL and SHA-256', async () => {
    const files = [
      {path: 'dl.example/v1/kubeadm', data: fileData(3000)},
      {path: 'charts/web-1.0.0.tgz', data: fileData(500), kind: 'chart' as const},
    ]
    const b = await makeBundle(join(tmp, 'files'), files)
    const r = await runCli(['inspect', b.dir, '--format', 'cyclonedx', '--json'])
    expect(r.code).toBe(0)
    expect(await new Validation.JsonStrictValidator(Spec.Version.v1dot5).validate(r.stdout)).toBeNull()
    const bom = JSON.parse(r.stdout)
    expect(bom.components).toEqual(
      b.lock.files.map((f) =>
        expect.objectContaining({
          type: 'file',
          name: f.path,
          hashes: [{alg: 'SHA-256', content: f.sha256}],
          externalReferences: [{type: 'distribution', url: f.url}],
        }),
      ),
    )
  })
})
