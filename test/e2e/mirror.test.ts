import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {readdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runCli} from '../helpers/cli.js'
import {type PushedImage, pushImage, randomLayer} from '../helpers/images.js'
import {
  attachReferrers,
  cosignKeyPair,
  pushFallbackIndex,
  pushReferrer,
  type Referrer,
  sbomArtifact,
  type SignedImageReferrers,
} from '../helpers/referrers.js'
import {type RegistryServer, startRegistry} from '../helpers/registry.js'
import {makeTempDir} from '../helpers/tmp.js'

const run = promisify(execFile)

let source: RegistryServer
let target: RegistryServer
let dir: string
const pushed: PushedImage[] = []
let signed: PushedImage
let attached: SignedImageReferrers
let childSbom: Referrer

/** The manifest bytes the target serves for a reference, read by skopeo (independent of airlock). */
async function targetRaw(ref: string): Promise<Buffer> {
  const {stdout} = await run(
    'skopeo',
    [
      'inspect',
      '--raw',
      '--cert-dir',
      join(dir, 'certs'),
      '--creds',
      `${target.username}:${target.password}`,
      `docker://${ref}`,
    ],
    {
      encoding: 'buffer',
      maxBuffer: 1 << 24,
    },
  )
  return stdout
}

async function targetDigest(ref: string): Promise<string> {
  return `sha256:${createHash('sha256')
    .update(await targetRaw(ref))
    .digest('hex')}`
}

/** Requests that write to the target (uploads, mounts, manifests), from its own log. */
async function writes(): Promise<number> {
  const log = await readFile(target.logFile, 'utf8')
  return (log.match(/"(?:PUT|PATCH|POST) \/v2\//g) ?? []).length
}

beforeAll(async () => {
  dir = await makeTempDir('airlock-mirror-')
  source = await startRegistry()
  target = await startRegistry({tls: true, auth: 'htpasswd', username: 'mirror', password: 'm1rror-pass'})
  // skopeo reads the target's CA from a cert dir.
  await run('mkdir', ['-p', join(dir, 'certs')])
  await writeFile(join(dir, 'certs', 'ca.crt'), await readFile(target.caFile!))
  const base = randomLayer(200_000)
  for (const tag of ['v1.28.0', 'v1.28.1', 'v1.29.0', 'latest'])
    pushed.push(await pushImage(source, {repository: 'team/app', tag, baseLayers: [base], layerSize: 50_000}))
  pushed.push(
    await pushImage(source, {
      repository: 'team/multi',
      tag: '2.0',
      platforms: ['linux/amd64', 'linux/arm64'],
      baseLayers: [base],
      layerSize: 40_000,
    }),
  )
  pushed.push(await pushImage(source, {repository: 'library/tool', tag: '1', format: 'docker', layerSize: 30_000}))
  // A signed multi-arch image: a cosign signature, an SBOM with subject (in the fallback tag index, as
  // distribution 2.8 has no referrers API), the SBOM's signature, and an SBOM of the arm64 manifest.
  signed = await pushImage(source, {
    repository: 'team/signed',
    tag: '1.0',
    platforms: ['linux/amd64', 'linux/arm64'],
    layerSize: 10_000,
  })
  attached = await attachReferrers(source, signed, cosignKeyPair())
  const arm = signed.children!.find((c) => c.platform === 'linux/arm64')!
  childSbom = sbomArtifact(
    {digest: arm.digest, mediaType: arm.mediaType, size: arm.manifestBytes.length},
    'signed-arm64',
  )
  await pushReferrer(source, 'team/signed', childSbom)
  await pushFallbackIndex(source, 'team/signed', arm.digest, [childSbom])
}, 120_000)

afterAll(async () => {
  await source?.stop()
  await target?.stop()
})

describe('airlock mirror', () => {
  it('copies every image registry to registry at its source digest, then a re-run uploads nothing', async () => {
    const s = source.host
    const file = join(dir, 'mirror.yaml')
    await writeFile(
      file,
      `apiVersion: airlock/v1
kind: Manifest
metadata:
  name: mirror
spec:
  images:
    - repository: ${s}/team/app
      tags: {semver: ">=1.28.1"}
    - ref: ${s}/team/multi:2.0
      platforms: [all]
    - ${s}/library/tool:1
`,
    )
    const work = await makeTempDir('airlock-mirror-cwd-')
    const args = [
      'mirror',
      file,
      '--registry',
      target.host,
      '--namespace',
      'dmz',
      '--ca-file',
      target.caFile!,
      '--username',
      'mirror',
      '--password',
      'm1rror-pass',
      '--json',
    ]
    const first = await runCli(args, {cwd: work})
    expect(first.code, first.stderr).toBe(0)
    const r = JSON.parse(first.stdout) as {
      items: {source: string; target: string; digest: string}[]
      counts: Record<string, number>
    }
    const want = pushed.filter((p) => !['v1.28.0', 'latest'].includes(p.tag))
    expect(r.items.map((i) => i.source).sort()).toEqual(want.map((p) => `${s}/${p.repository}:${p.tag}`).sort())
    for (const p of want) {
      const row = r.items.find((i) => i.source === `${s}/${p.repository}:${p.tag}`)!
      expect(row.target).toBe(`${target.host}/dmz/${p.repository}:${p.tag}`)
      expect(row.digest).toBe(p.digest)
      expect(await targetDigest(row.target), row.target).toBe(p.digest)
    }
    // The shared base layer went over the wire once and was mounted into the other repositories.
    expect(r.counts.blobsMounted).toBeGreaterThan(0)
    // Each manifest by digest (the index's two children too), then each tag.
    expect(r.counts.manifestsPushed).toBe(2 * want.length + 2)
    expect(first.stderr).not.toContain('m1rror-pass')
    // Nothing was written beside the run: blobs streamed from source to target.
    expect(await readdir(work)).toEqual([])

    const before = await writes()
    const again = await runCli(args, {cwd: work})
    expect(again.code, again.stderr).toBe(0)
    const r2 = JSON.parse(again.stdout) as {counts: Record<string, number>}
    expect(r2.counts).toMatchObject({
      images: want.length,
      blobsUploaded: 0,
      blobsMounted: 0,
      bytesUploaded: 0,
      manifestsPushed: 0,
    })
    expect(await writes()).toBe(before)
  })

  it('copies the referrers too: each at its digest, cosign tags kept, the fallback tag index where the target has no referrers API', async () => {
    const s = source.host
    const file = join(dir, 'signed.yaml')
    const write = (extra: string) =>
      writeFile(
        file,
        `apiVersion: airlock/v1\nkind: Manifest\nmetadata:\n  name: signed\nspec:\n${extra}  images:\n    - ref: ${s}/team/signed:1.0\n      platforms: [all]\n`,
      )
    await write('')
    const args = (ns: string) => [
      'mirror',
      file,
      '--registry',
      target.host,
      '--namespace',
      ns,
      '--ca-file',
      target.caFile!,
      '--username',
      'mirror',
      '--password',
      'm1rror-pass',
      '--json',
    ]
    const r = await runCli(args('sig'))
    expect(r.code, r.stderr).toBe(0)
    const all = [...attached.all, childSbom]
    const out = JSON.parse(r.stdout) as {
      counts: Record<string, number>
      items: {referrers?: {digest: string; subject: string; tag?: string}[]}[]
    }
    expect(out.items[0].referrers?.map((x) => [x.digest, x.subject, x.tag]).sort()).toEqual(
      all.map((x) => [x.digest, x.subject, x.tag]).sort(),
    )
    expect(out.counts.referrers).toBe(all.length)
    const repo = `${target.host}/sig/team/signed`
    for (const x of all) {
      expect(await targetRaw(`${repo}@${x.digest}`), x.digest).toEqual(x.manifestBytes)
      if (x.tag) expect(await targetDigest(`${repo}:${x.tag}`), x.tag).toBe(x.digest)
    }
    // What a client without the referrers API reads: the referrers tag schema's index of each subject.
    const fallback = JSON.parse((await targetRaw(`${repo}:sha256-${signed.digest.slice(7)}`)).toString()) as {
      manifests: {digest: string; artifactType: string}[]
    }
    expect(fallback.manifests).toEqual([
      expect.objectContaining({digest: attached.sbom.digest, artifactType: 'application/vnd.cyclonedx+json'}),
    ])
    const childFallback = JSON.parse((await targetRaw(`${repo}:sha256-${childSbom.subject.slice(7)}`)).toString()) as {
      manifests: {digest: string}[]
    }
    expect(childFallback.manifests.map((m) => m.digest)).toEqual([childSbom.digest])
    // Again: nothing is written, the fallback indexes stay as they are.
    const before = await writes()
    const again = await runCli(args('sig'))
    expect(again.code, again.stderr).toBe(0)
    expect(await writes()).toBe(before)

    // spec.referrers narrows it: SBOMs only, no signatures.
    await write('  referrers: [application/vnd.cyclonedx+json]\n')
    const sbom = await runCli(args('sbom'))
    expect(sbom.code, sbom.stderr).toBe(0)
    const only = (JSON.parse(sbom.stdout) as {items: {referrers?: {digest: string}[]}[]}).items[0].referrers!.map(
      (x) => x.digest,
    )
    expect(only.sort()).toEqual([attached.sbom.digest, childSbom.digest].sort())
    await expect(targetRaw(`${target.host}/sbom/team/signed:${attached.signature.tag}`)).rejects.toThrow()
  })

  it('a locked multi-arch tag with a platform subset is filtered as the tag is; a digest alone keeps the whole index', async () => {
    const s = source.host
    const multi = pushed.find((p) => p.repository === 'team/multi')!
    const file = join(dir, 'locked.yaml')
    await writeFile(
      file,
      `apiVersion: airlock/v1\nkind: Manifest\nmetadata:\n  name: locked\nspec:\n  platforms: [linux/arm64]\n  images:\n    - ${s}/team/multi:2.0@${multi.digest}\n    - ${s}/team/multi@${multi.digest}\n`,
    )
    const r = await runCli([
      'mirror',
      file,
      '--registry',
      target.host,
      '--namespace',
      'locked',
      '--ca-file',
      target.caFile!,
      '--username',
      'mirror',
      '--password',
      'm1rror-pass',
      '--json',
    ])
    expect(r.code, r.stderr).toBe(0)
    const items = (
      JSON.parse(r.stdout) as {
        items: {source: string; target: string; digest: string; platforms: string[]; sourceDigest?: string}[]
      }
    ).items
    const byTag = items.find((i) => i.source === `${s}/team/multi:2.0@${multi.digest}`)!
    expect(byTag).toMatchObject({
      target: `${target.host}/locked/team/multi:2.0`,
      platforms: ['linux/arm64'],
      sourceDigest: multi.digest,
    })
    expect(byTag.digest).not.toBe(multi.digest)
    expect(await targetDigest(byTag.target)).toBe(byTag.digest)
    const byDigest = items.find((i) => i.source === `${s}/team/multi@${multi.digest}`)!
    expect(byDigest).toMatchObject({target: `${target.host}/locked/team/multi@${multi.digest}`, digest: multi.digest})
    expect(await targetDigest(byDigest.target)).toBe(multi.digest)
    expect(r.stderr).toContain(
      `${s}/team/multi@${multi.digest}: pinned to an index digest with no tag; carrying all 2 platforms`,
    )
  })

  it('--dry-run prints the mapping and copies nothing; a selection that matches nothing exits 2', async () => {
    const file = join(dir, 'dry.yaml')
    await writeFile(
      file,
      `apiVersion: airlock/v1\nkind: Manifest\nmetadata:\n  name: dry\nspec:\n  images:\n    - repository: ${source.host}/team/app\n      tags: {latest: 1}\n`,
    )
    const before = await writes()
    const dry = await runCli(['mirror', file, '--registry', target.host, '--namespace', 'dry', '--dry-run'])
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout).toContain(`${source.host}/team/app:v1.29.0 -> ${target.host}/dry/team/app:v1.29.0`)
    expect(await writes()).toBe(before)
    await writeFile(
      file,
      `apiVersion: airlock/v1\nkind: Manifest\nmetadata:\n  name: dry\nspec:\n  images:\n    - repository: ${source.host}/team/app\n      tags: {semver: "^9"}\n`,
    )
    const none = await runCli(['mirror', file, '--registry', target.host, '--dry-run'])
    expect(none.code).toBe(2)
    expect(none.stderr).toContain(`spec.images[0].tags: no tag of ${source.host}/team/app matches {semver: "^9"}`)
  })
})
