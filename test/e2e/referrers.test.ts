import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {Spec, Validation} from '@cyclonedx/cyclonedx-library'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {LockReferrer} from '../../src/lib/bundle-json.js'
import {runCli} from '../helpers/cli.js'
import {type PushedImage, pushImage, RegistrySession} from '../helpers/images.js'
import {
  attachReferrers,
  type CosignKeyPair,
  cosignKeyPair,
  pushFallbackIndex,
  pushReferrer,
  type Referrer,
  sbomArtifact,
  type SignedImageReferrers,
  writePublicKey,
} from '../helpers/referrers.js'
import {type RegistryServer, startRegistry} from '../helpers/registry.js'
import {makeTempDir} from '../helpers/tmp.js'

// Signatures, SBOMs and signatures of SBOMs travel with their image: pulled
// from a real distribution registry (which has no referrers API, so the
// referrers tag schema and cosign's tags are how they are found), bundled,
// verified offline with the key, listed, and pushed into a second registry.

const run = promisify(execFile)
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`

/** The manifest bytes a registry serves for a reference, read by skopeo (independent of airlock). */
async function served(ref: string): Promise<Buffer> {
  return (
    await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`], {
      encoding: 'buffer',
      maxBuffer: 16 << 20,
    })
  ).stdout
}

let source: RegistryServer
let target: RegistryServer
let key: CosignKeyPair
let image: PushedImage
let plain: PushedImage
let attached: SignedImageReferrers
/** An SBOM of the arm64 platform manifest, in that manifest's fallback tag index. */
let childSbom: Referrer
let all: Referrer[]
let tmp: string
let keyFile: string
let otherKeyFile: string

const APP = () => `${source.host}/team/app:1.0`
const PLAIN = () => `${source.host}/team/plain:1.0`

async function manifestFile(name: string, extra = ''): Promise<string> {
  const file = join(tmp, `${name}.yaml`)
  await writeFile(
    file,
    `apiVersion: airlock/v1\nkind: Manifest\nmetadata:\n  name: ${name}\nspec:\n${extra}  images:\n    - ref: ${APP()}\n      platforms: [all]\n    - ${PLAIN()}\n`,
  )
  return file
}

// What bundle.json records of a referrer.
const asLock = (r: Referrer): LockReferrer => ({
  digest: r.digest,
  mediaType: r.mediaType,
  artifactType: r.artifactType,
  size: r.size,
  subject: r.subject,
  ...(r.tag ? {tag: r.tag} : {}),
})
const byDigest = (a: {digest: string}, b: {digest: string}) => a.digest.localeCompare(b.digest)

beforeAll(async () => {
  ;[source, target] = await Promise.all([startRegistry(), startRegistry()])
  tmp = await makeTempDir('airlock-referrers-')
  key = cosignKeyPair()
  keyFile = await writePublicKey(join(tmp, 'cosign.pub'), key)
  otherKeyFile = await writePublicKey(join(tmp, 'other.pub'), cosignKeyPair())
  image = await pushImage(source, {repository: 'team/app', tag: '1.0', platforms: ['linux/amd64', 'linux/arm64']})
  plain = await pushImage(source, {repository: 'team/plain', tag: '1.0'})
  attached = await attachReferrers(source, image, key)
  const arm = image.children!.find((c) => c.platform === 'linux/arm64')!
  childSbom = sbomArtifact({digest: arm.digest, mediaType: arm.mediaType, size: arm.manifestBytes.length}, 'app-arm64')
  await pushReferrer(source, 'team/app', childSbom)
  await pushFallbackIndex(source, 'team/app', arm.digest, [childSbom])
  all = [...attached.all, childSbom]
})

afterAll(async () => {
  await Promise.all([source?.stop(), target?.stop()])
})

describe('referrer fixtures', () => {
  it('the registry holds the signature, the SBOM with subject, its fallback tag index and the SBOM signature', async () => {
    const repo = `${source.host}/team/app`
    for (const r of all) {
      expect(sha256(await served(`${repo}@${r.digest}`))).toBe(r.digest)
      if (r.tag) expect(sha256(await served(`${repo}:${r.tag}`))).toBe(r.digest)
    }
    expect(attached.signature.tag).toBe(`sha256-${image.digest.slice(7)}.sig`)
    expect(attached.sbomSignature.tag).toBe(`sha256-${attached.sbom.digest.slice(7)}.sig`)
    const fallback = JSON.parse((await served(`${repo}:sha256-${image.digest.slice(7)}`)).toString())
    expect(fallback.manifests).toEqual([
      expect.objectContaining({digest: attached.sbom.digest, artifactType: 'application/vnd.cyclonedx+json'}),
    ])
    expect(JSON.parse(attached.sbom.manifestBytes.toString()).subject.digest).toBe(image.digest)
  })
})

describe('pull, bundle, verify, inspect and import registry carry referrers', () => {
  let store: string
  let bundle: string

  it('pull copies every referrer of the image and of its platform manifests, recursively, byte for byte', async () => {
    store = join(tmp, 'store')
    const r = await runCli(['pull', await manifestFile('signed'), '--store', store, '--json'])
    expect(r.stderr).not.toMatch(/Error/)
    expect(r.code).toBe(0)
    const records = JSON.parse(await readFile(join(store, 'records.json'), 'utf8'))
    const app = records.images.find((i: {ref: string}) => i.ref === APP())
    expect(app.digest).toBe(image.digest)
    expect(app.referrers).toHaveLength(4)
    expect([...app.referrers].sort(byDigest)).toEqual(all.map(asLock).sort(byDigest))
    expect(records.images.find((i: {ref: string}) => i.ref === PLAIN()).referrers).toBeUndefined()
    // Every manifest and blob of every referrer is in the layout with its digest, and found again by subject.
    for (const x of all) {
      for (const b of [{digest: x.digest, data: x.manifestBytes}, ...x.blobs]) {
        expect(sha256(await readFile(join(store, 'images', 'blobs', 'sha256', b.digest.slice(7))))).toBe(b.digest)
      }
    }
    const index = JSON.parse(await readFile(join(store, 'images', 'index.json'), 'utf8'))
    const entries = index.manifests.filter(
      (m: {annotations?: Record<string, string>}) => m.annotations?.['io.airlock.referrer.subject'],
    )
    expect(
      entries
        .map((e: {digest: string; annotations: Record<string, string>}) => [
          e.digest,
          e.annotations['io.airlock.referrer.subject'],
        ])
        .sort(),
    ).toEqual(all.map((x) => [x.digest, x.subject]).sort())
  })

  it('bundle lists them under their image; verify checks every digest; inspect lists them', async () => {
    bundle = join(tmp, 'bundle')
    const b = await runCli(['bundle', '--store', store, '--out', bundle])
    expect(b.stderr).not.toMatch(/Error/)
    expect(b.code).toBe(0)
    const lock = JSON.parse(await readFile(join(bundle, 'bundle.json'), 'utf8'))
    expect([...lock.images.find((i: {ref: string}) => i.ref === APP()).referrers].sort(byDigest)).toEqual(
      all.map(asLock).sort(byDigest),
    )
    const v = await runCli(['verify', bundle, '--json'])
    expect(v.code).toBe(0)
    expect(JSON.parse(v.stdout).ok).toBe(true)
    const i = await runCli(['inspect', bundle, '--json'])
    const listed = JSON.parse(i.stdout).images.find((x: {ref: string}) => x.ref === APP()).referrers
    expect(listed.map((x: {digest: string}) => x.digest).sort()).toEqual(all.map((x) => x.digest).sort())
    expect((await runCli(['inspect', bundle])).stdout).toMatch(/REFERRERS \(4\)/)
  })

  it('verify --key: signed with the right key, unsigned for the unsigned image, bad with another key; --require-signatures exits 1', async () => {
    const good = await runCli(['verify', bundle, '--key', keyFile, '--json'])
    expect(good.code).toBe(0)
    expect(JSON.parse(good.stdout).signatures).toEqual([
      {ref: APP(), digest: image.digest, status: 'signed'},
      {ref: PLAIN(), digest: plain.digest, status: 'unsigned'},
    ])
    const other = await runCli(['verify', bundle, '--key', otherKeyFile, '--json'])
    expect(other.code).toBe(1)
    expect(JSON.parse(other.stdout).error.details[0]).toBe(`bad ${APP()}@${image.digest}`)
    const strict = await runCli(['verify', bundle, '--key', keyFile, '--require-signatures', '--json'])
    expect(strict.code).toBe(1)
    expect(JSON.parse(strict.stdout).error.details[0]).toBe(`unsigned ${PLAIN()}@${plain.digest}`)
  })

  it('inspect --format cyclonedx validates against CycloneDX 1.5 and names every digest', async () => {
    const r = await runCli(['inspect', bundle, '--format', 'cyclonedx'])
    expect(r.code).toBe(0)
    expect(await new Validation.JsonStrictValidator(Spec.Version.v1dot5).validate(r.stdout)).toBeNull()
    for (const d of [image.digest, plain.digest, ...all.map((x) => x.digest)])
      expect(r.stdout).toContain(`sha256%3A${d.slice(7)}`)
  })

  it('import registry pushes each referrer at its digest, cosign tags kept, and the fallback tag where the target has no referrers API', async () => {
    const r = await runCli(['import', 'registry', bundle, '--registry', target.host, '--json'])
    expect(r.stderr).not.toMatch(/Error/)
    expect(r.code).toBe(0)
    const repo = `${target.host}/team/app`
    for (const x of all) {
      expect(await served(`${repo}@${x.digest}`)).toEqual(x.manifestBytes)
      if (x.tag) expect(sha256(await served(`${repo}:${x.tag}`))).toBe(x.digest)
      const session = new RegistrySession(target, 'team/app')
      for (const b of x.blobs) expect(await session.hasBlob(b.digest)).toBe(true)
    }
    const fallback = JSON.parse((await served(`${repo}:sha256-${image.digest.slice(7)}`)).toString())
    expect(fallback.manifests).toEqual([
      expect.objectContaining({
        digest: attached.sbom.digest,
        artifactType: 'application/vnd.cyclonedx+json',
        size: attached.sbom.size,
      }),
    ])
    const childFallback = JSON.parse((await served(`${repo}:sha256-${childSbom.subject.slice(7)}`)).toString())
    expect(childFallback.manifests.map((m: {digest: string}) => m.digest)).toEqual([childSbom.digest])
    // Again: everything is there, nothing changes.
    const again = await runCli(['import', 'registry', bundle, '--registry', target.host])
    expect(again.code).toBe(0)
    expect(JSON.parse((await served(`${repo}:sha256-${image.digest.slice(7)}`)).toString())).toEqual(fallback)
  })
})

describe('a platform filter that rewrites the index', () => {
  it('keeps the signature of the upstream index (verify --key: signed by the source digest), leaves out an SBOM whose subject is that index, with a warning', async () => {
    const file = join(tmp, 'filtered.yaml')
    await writeFile(
      file,
      `apiVersion: airlock/v1\nkind: Manifest\nmetadata:\n  name: filtered\nspec:\n  platforms: [linux/amd64]\n  images:\n    - ${APP()}\n`,
    )
    const store = join(tmp, 'store-filtered')
    const r = await runCli(['pull', file, '--store', store])
    expect(r.code).toBe(0)
    expect(r.stderr).toContain(`left out referrer ${attached.sbom.digest}`)
    const app = JSON.parse(await readFile(join(store, 'records.json'), 'utf8')).images[0]
    expect(app.sourceDigest).toBe(image.digest)
    expect(app.referrers).toEqual([asLock(attached.signature)])
    const out = join(tmp, 'bundle-filtered')
    expect((await runCli(['bundle', '--store', store, '--out', out])).code).toBe(0)
    const v = await runCli(['verify', out, '--key', keyFile, '--json'])
    expect(v.code).toBe(0)
    expect(JSON.parse(v.stdout).signatures).toEqual([{ref: APP(), digest: app.digest, status: 'signed'}])
  })
})

describe('spec.referrers narrows what pull copies', () => {
  it('none: images only', async () => {
    const store = join(tmp, 'store-none')
    const r = await runCli(['pull', await manifestFile('none', '  referrers: none\n'), '--store', store])
    expect(r.code).toBe(0)
    const records = JSON.parse(await readFile(join(store, 'records.json'), 'utf8'))
    expect(records.images.every((i: {referrers?: unknown}) => i.referrers === undefined)).toBe(true)
  })

  it('a list of artifact types, applied to referrers of referrers too', async () => {
    const store = join(tmp, 'store-sbom')
    const r = await runCli([
      'pull',
      await manifestFile('sbom', '  referrers: [application/vnd.cyclonedx+json]\n'),
      '--store',
      store,
    ])
    expect(r.code).toBe(0)
    const records = JSON.parse(await readFile(join(store, 'records.json'), 'utf8'))
    const app = records.images.find((i: {ref: string}) => i.ref === APP())
    expect(app.referrers.map((x: {digest: string}) => x.digest).sort()).toEqual(
      [attached.sbom.digest, childSbom.digest].sort(),
    )
  })

  it('a referrer that cannot be fetched fails the pull, naming it', async () => {
    const repo = 'team/broken'
    const img = await pushImage(source, {repository: repo, tag: '1.0'})
    const sbom = sbomArtifact({digest: img.digest, mediaType: img.mediaType, size: img.manifestBytes.length})
    await pushReferrer(source, repo, sbom)
    await pushFallbackIndex(source, repo, img.digest, [sbom])
    const session = new RegistrySession(source, repo)
    expect((await session.request('DELETE', `/v2/${repo}/blobs/${sbom.blobs[1].digest}`)).status).toBe(202)
    const file = join(tmp, 'broken.yaml')
    await writeFile(
      file,
      `apiVersion: airlock/v1\nkind: Manifest\nmetadata:\n  name: broken\nspec:\n  images:\n    - ${source.host}/${repo}:1.0\n`,
    )
    const r = await runCli(['pull', file, '--store', join(tmp, 'store-broken'), '--json'])
    expect(r.code).toBe(1)
    expect(JSON.parse(r.stdout).error.message).toContain(sbom.blobs[1].digest)
  })
})
