import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {readdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runCli} from '../helpers/cli.js'
import {type Blob, type PushedImage, pushImage, randomLayer} from '../helpers/images.js'
import {connectionsOf, type NginxServer, startNginx} from '../helpers/nginx.js'
import {type RegistryServer, startRegistry} from '../helpers/registry.js'
import {renamedBeforeFlush, straceCli} from '../helpers/strace.js'
import {makeTempDir} from '../helpers/tmp.js'

const run = promisify(execFile)

// One registry with OCI and Docker images sharing a base layer, behind nginx
// so that every blob GET shows in an access log.
let reg: RegistryServer
let front: NginxServer
let base: Blob
let multi: PushedImage
let dockerList: PushedImage
let single: PushedImage
let other: PushedImage

beforeAll(async () => {
  reg = await startRegistry()
  base = randomLayer(300_000)
  multi = await pushImage(reg, {
    repository: 'lib/multi',
    tag: '1.0',
    platforms: ['linux/amd64', 'linux/arm64', 'linux/arm/v7'],
    baseLayers: [base],
  })
  dockerList = await pushImage(reg, {
    repository: 'lib/dock',
    tag: '2.0',
    format: 'docker',
    platforms: ['linux/amd64', 'linux/arm64'],
    baseLayers: [base],
  })
  single = await pushImage(reg, {repository: 'lib/single', tag: '3.0', baseLayers: [base]})
  other = await pushImage(reg, {repository: 'lib/other', tag: 'x', format: 'docker', layers: 2})
  front = await startNginx({proxyTo: reg.url})
})

afterAll(async () => {
  await front?.stop()
  await reg?.stop()
})

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`
}

async function manifestFile(dir: string, images: string, extra = ''): Promise<string> {
  const file = join(dir, 'airlock.yaml')
  await writeFile(
    file,
    `apiVersion: airlock/v1\nkind: Manifest\nmetadata:\n  name: pull-test\nspec:\n  platforms: [linux/amd64]\n${extra}  images:\n${images}`,
  )
  return file
}

interface PullImageRow {
  kind: 'image'
  ref: string
  digest: string
  mediaType: string
  platforms: string[]
  size: number
  bytesFetched: number
  bytesReused: number
  sourceDigest?: string
}

interface PullJson {
  store: string
  counts: {images: number; files: number}
  items: PullImageRow[]
  /** The image rows of items (all of them, for these image-only manifests). */
  images: PullImageRow[]
}

function pullJson(stdout: string): PullJson {
  const r = JSON.parse(stdout) as Omit<PullJson, 'images'>
  return {...r, images: r.items.filter((i) => i.kind === 'image')}
}

async function blobGets(nginx: NginxServer): Promise<string[]> {
  return (await nginx.accessLines()).filter((l) => /"GET \/v2\/[^ ]+\/blobs\/sha256:/.test(l))
}

describe('airlock pull (images) against the distribution registry', () => {
  let store: string
  let first: PullJson
  const name = (img: PushedImage, host = front.host) => `${host}/${img.repository}:${img.tag}`

  it('pulls a filtered index, [all], Docker and OCI media types and a pinned digest; shared layers once', async () => {
    const dir = await makeTempDir('airlock-pull-')
    store = join(dir, 'store')
    const file = await manifestFile(
      dir,
      [
        `    - ${name(multi)}`,
        `    - ref: ${name(dockerList)}`,
        `      platforms: [all]`,
        `    - ${name(single)}`,
        `    - ${front.host}/${other.repository}@${other.digest}`,
      ].join('\n') + '\n',
    )
    const r = await runCli(['pull', file, '--store', store, '--json'])
    expect(r.stderr).not.toMatch(/Error/)
    expect(r.code).toBe(0)
    first = pullJson(r.stdout)
    expect(first.counts.images).toBe(first.images.length)
    const byRef = new Map(first.images.map((i) => [i.ref, i]))

    // Filtered index: a new index holding the amd64 descriptor verbatim, its source recorded.
    const m = byRef.get(name(multi))!
    expect(m.platforms).toEqual(['linux/amd64'])
    expect(m.sourceDigest).toBe(multi.digest)
    expect(m.digest).not.toBe(multi.digest)
    const newIndex = await readFile(join(store, 'images/blobs/sha256', m.digest.slice(7)))
    expect(sha256(newIndex)).toBe(m.digest)
    const srcIndex = JSON.parse(multi.manifestBytes.toString()) as {manifests: {platform: {architecture: string}}[]}
    expect(JSON.parse(newIndex.toString()).manifests).toEqual(
      srcIndex.manifests.filter((d) => d.platform.architecture === 'amd64'),
    )

    // [all]: the Docker manifest list byte for byte.
    const d = byRef.get(name(dockerList))!
    expect(d.digest).toBe(dockerList.digest)
    expect(d.mediaType).toBe('application/vnd.docker.distribution.manifest.list.v2+json')
    expect(d.platforms.sort()).toEqual(['linux/amd64', 'linux/arm64'])
    expect(d.sourceDigest).toBeUndefined()
    expect(await readFile(join(store, 'images/blobs/sha256', dockerList.digest.slice(7)))).toEqual(
      dockerList.manifestBytes,
    )

    const s = byRef.get(name(single))!
    expect(s.digest).toBe(single.digest)
    expect(s.mediaType).toBe(single.mediaType)
    expect(s.platforms).toEqual(['linux/amd64'])
    expect(s.size).toBe(single.manifestBytes.length + single.blobs.reduce((n, b) => n + b.size, 0))

    const o = byRef.get(`${front.host}/${other.repository}@${other.digest}`)!
    expect(o.digest).toBe(other.digest)
    expect(o.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json')

    // Every blob GET once: the shared base layer too.
    const gets = await blobGets(front)
    const perDigest = new Map<string, number>()
    for (const l of gets) {
      const dg = /blobs\/(sha256:[a-f0-9]{64})/.exec(l)![1]
      perDigest.set(dg, (perDigest.get(dg) ?? 0) + 1)
    }
    expect(perDigest.get(base.digest)).toBe(1)
    expect([...perDigest.values()].every((n) => n === 1)).toBe(true)

    // index.json: one entry per image with both annotations; every blob hashes to its name.
    const index = JSON.parse(await readFile(join(store, 'images/index.json'), 'utf8')) as {
      manifests: {digest: string; annotations: Record<string, string>}[]
    }
    expect(index.manifests.map((e) => e.annotations['org.opencontainers.image.ref.name']).sort()).toEqual(
      [...byRef.keys()].sort(),
    )
    for (const e of index.manifests)
      expect(e.annotations['io.containerd.image.name']).toBe(e.annotations['org.opencontainers.image.ref.name'])
    // Docker content is listed under the OCI type of the same shape (skopeo resolves no other); its bytes keep their own.
    const dockEntry = index.manifests.find((e) => e.digest === dockerList.digest) as unknown as {mediaType: string}
    expect(dockEntry.mediaType).toBe('application/vnd.oci.image.index.v1+json')
    for (const f of await readdir(join(store, 'images/blobs/sha256'))) {
      expect(sha256(await readFile(join(store, 'images/blobs/sha256', f)))).toBe(`sha256:${f}`)
    }
    const records = JSON.parse(await readFile(join(store, 'records.json'), 'utf8')) as {images: {ref: string}[]}
    expect(records.images).toHaveLength(4)
  })

  // Every image, Docker ones included (listed under their OCI twin types, the only ones skopeo 1.9 resolves
  // by name), keeps its digest, but a Docker manifest list: skopeo 1.9.3 takes the list's type from
  // index.json and writes it re-serialized as an OCI index (same child manifests, new digest).
  it('is read by skopeo, an independent implementation, at the recorded digests', async () => {
    expect(first.images.map((i) => i.mediaType).sort()).toEqual([
      'application/vnd.docker.distribution.manifest.list.v2+json',
      'application/vnd.docker.distribution.manifest.v2+json',
      'application/vnd.oci.image.index.v1+json',
      'application/vnd.oci.image.manifest.v1+json',
    ])
    for (const img of first.images) {
      const out = await makeTempDir('airlock-skopeo-')
      await run('skopeo', [
        'copy',
        '--all',
        `oci:${join(store, 'images')}:${img.ref}`,
        `dir:${join(out, 'img')}`,
      ]).catch((err: {stderr?: string}) => {
        throw new Error(`skopeo could not read ${img.ref}: ${err.stderr}`)
      })
      const top = await readFile(join(out, 'img', 'manifest.json'))
      if (img.mediaType !== 'application/vnd.docker.distribution.manifest.list.v2+json') {
        expect(sha256(top), img.ref).toBe(img.digest)
        continue
      }
      type List = {mediaType: string; manifests: {digest: string}[]}
      const original = JSON.parse(
        await readFile(join(store, 'images/blobs/sha256', img.digest.slice(7)), 'utf8'),
      ) as List
      const written = JSON.parse(top.toString()) as List
      expect(written.mediaType).toBe('application/vnd.oci.image.index.v1+json')
      expect(written.manifests).toEqual(original.manifests)
      for (const child of original.manifests) {
        expect(sha256(await readFile(join(out, 'img', `${child.digest.slice(7)}.manifest.json`))), child.digest).toBe(
          child.digest,
        )
      }
    }
  })

  it('fetches no blob on a re-run', async () => {
    const before = (await blobGets(front)).length
    const dir = await makeTempDir('airlock-pull-')
    const file = await manifestFile(dir, `    - ${name(multi)}\n    - ${name(single)}\n`)
    const r = await runCli(['pull', file, '--store', store, '--json'])
    expect(r.code).toBe(0)
    const res = pullJson(r.stdout)
    expect(res.images.every((i) => i.bytesFetched === 0)).toBe(true)
    expect((await blobGets(front)).length).toBe(before)
  })

  it('keeps the platforms --platform names, overriding the manifest', async () => {
    const dir = await makeTempDir('airlock-pull-')
    const file = await manifestFile(dir, `    - ${name(multi)}\n`)
    const r = await runCli([
      'pull',
      file,
      '--store',
      join(dir, 'store'),
      '--json',
      '--platform',
      'linux/arm64',
      '--platform',
      'linux/arm/v7',
    ])
    expect(r.code).toBe(0)
    const [img] = pullJson(r.stdout).images
    expect(img.platforms).toEqual(['linux/arm64', 'linux/arm/v7'])
    expect(img.sourceDigest).toBe(multi.digest)
  })

  it('names the image and its platforms when none matches', async () => {
    const dir = await makeTempDir('airlock-pull-')
    const file = await manifestFile(dir, `    - ${name(multi)}\n    - ${name(single)}\n`)
    let r = await runCli(['pull', file, '--store', join(dir, 'store'), '--platform', 'linux/s390x'])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(
      `${name(multi)}: none of the platforms asked for (linux/s390x) is in the image; it has linux/amd64, linux/arm64, linux/arm/v7`,
    )
    expect(r.stderr).toContain(`${name(single)}: the image is for linux/amd64 only, not linux/s390x`)
    r = await runCli(['pull', file, '--store', join(dir, 'store'), '--platform', 'linux/s390x', '--json'])
    expect(JSON.parse(r.stdout).error.exitCode).toBe(1)
  })

  it('fails clearly for an unknown tag, an unknown repository and a pinned digest the registry does not have', async () => {
    const dir = await makeTempDir('airlock-pull-')
    for (const [ref, expected] of [
      [
        `${front.host}/lib/multi:nope`,
        new RegExp(`Error: ${front.host}/lib/multi:nope: no such tag \\(HTTP 404 MANIFEST_UNKNOWN\\)`),
      ],
      [
        `${front.host}/lib/nothing:1`,
        new RegExp(
          `Error: ${front.host}/lib/nothing:1: no such (tag|repository) \\(HTTP 404 (NAME|MANIFEST)_UNKNOWN\\)`,
        ),
      ],
      [
        `${front.host}/lib/multi:1.0@sha256:${'ab'.repeat(32)}`,
        new RegExp(`lib/multi@sha256:${'ab'.repeat(32)}: no manifest with that digest \\(HTTP 404 MANIFEST_UNKNOWN\\)`),
      ],
    ] as const) {
      const file = await manifestFile(dir, `    - ${ref}\n`)
      const r = await runCli(['pull', file, '--store', join(dir, 'store')])
      expect(r.code, r.stderr).toBe(1)
      expect(r.stderr).toMatch(expected)
      // How to see which tags there are.
      expect(r.stderr).toContain(
        `Hint: list its tags with \`skopeo list-tags docker://${ref
          .split(/[:@]/)
          .slice(0, 2)
          .join(':')
          .replace(/:[^:/]*$/, '')}`,
      )
    }
  })

  it('gives a clear error after the retries when the registry is down', async () => {
    const dir = await makeTempDir('airlock-pull-')
    const downReg = await startRegistry()
    const host = downReg.host
    await downReg.stop()
    const file = await manifestFile(dir, `    - ${host}/lib/x:1\n`)
    const t0 = Date.now()
    const r = await runCli(['pull', file, '--store', join(dir, 'store')])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`Error: ${host}: cannot reach the registry: connect ECONNREFUSED (5 attempts)`)
    expect(r.stderr).toContain('(5 attempts)')
    // The retries waited (backoff), but not forever.
    expect(Date.now() - t0).toBeGreaterThan(1000)
    expect(Date.now() - t0).toBeLessThan(60_000)
  })

  it('refuses a second pull on the same store while one runs', async () => {
    const dir = await makeTempDir('airlock-pull-')
    const st = join(dir, 'store')
    const file = await manifestFile(dir, `    - ${name(multi)}\n`)
    const {mkdir} = await import('node:fs/promises')
    await mkdir(st, {recursive: true})
    // A lock held by a live process (this test runner).
    await writeFile(join(st, '.lock'), `${process.pid} ${(await import('node:os')).hostname()}\n`)
    const r = await runCli(['pull', file, '--store', st])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/in use by another airlock process/)
  })
})

describe('airlock pull keeps its connections', () => {
  it('carries a pull of many images over a few keep-alive connections, HEADs included', async () => {
    // 24 two-platform images: each one's referrer lookups (the registry has no referrers API, so
    // the tag schema and cosign's tags) are a dozen HEADs, as the front refuses to list tags (some
    // registries deny tags/list to a pull-only token) and the lookups fall back to a HEAD per tag.
    // A connection closed after each request (a HEAD whose answer was not read to its end) would
    // make the connections about as many as the requests; kept alive, they are at most the
    // agent's sockets per host (64).
    const images = await Promise.all(
      Array.from({length: 24}, (_, i) =>
        pushImage(reg, {
          repository: `keep/app-${i}`,
          tag: '1',
          platforms: ['linux/amd64', 'linux/arm64'],
          layerSize: 512,
        }),
      ),
    )
    const web = await startNginx({proxyTo: reg.url, extraServerConfig: 'location ~ /tags/list$ { return 403; }'})
    try {
      const dir = await makeTempDir('airlock-pull-')
      const file = await manifestFile(
        dir,
        images.map((img) => `    - ref: ${web.host}/${img.repository}:${img.tag}\n      platforms: [all]`).join('\n') +
          '\n',
      )
      const r = await runCli(['pull', file, '--store', join(dir, 'store'), '--concurrency', '4'])
      expect(r.code, r.stderr).toBe(0)
      const lines = await web.accessLines()
      // Refused once per repository, not once per lookup.
      expect(lines.filter((l) => /"GET \/v2\/[^ ]+\/tags\/list\?[^ ]* HTTP\/[\d.]+" 403 /.test(l))).toHaveLength(24)
      const heads = lines.filter((l) => l.includes('"HEAD /v2/'))
      expect(heads.length).toBeGreaterThanOrEqual(24 * 3 * 4)
      const connections = connectionsOf(lines)
      console.log(`${lines.length} requests on ${connections.size} connections`)
      expect(connections.size, `${lines.length} requests on ${connections.size} connections`).toBeLessThanOrEqual(64)
    } finally {
      await web.stop()
    }
  })
})

describe('airlock pull looks referrer tags up in the tag list', () => {
  it("reads each repository's tags once and HEADs no sha256-* tag of images without referrers", async () => {
    // 12 two-platform images in 4 repositories, none with referrers, on a registry without the
    // referrers API: 36 subjects, which by HEADs would be 144 requests (the tag schema's
    // sha256-<hex> and cosign's .sig, .att, .sbom each); by the tag lists they are 4.
    const images = await Promise.all(
      Array.from({length: 12}, (_, i) =>
        pushImage(reg, {
          repository: `nosig/app-${i % 4}`,
          tag: `${i}`,
          platforms: ['linux/amd64', 'linux/arm64'],
          layerSize: 512,
        }),
      ),
    )
    const web = await startNginx({proxyTo: reg.url})
    try {
      const dir = await makeTempDir('airlock-pull-')
      const file = await manifestFile(
        dir,
        images.map((img) => `    - ref: ${web.host}/${img.repository}:${img.tag}\n      platforms: [all]`).join('\n') +
          '\n',
      )
      const r = await runCli(['pull', file, '--store', join(dir, 'store'), '--json'])
      expect(r.code, r.stderr).toBe(0)
      expect(
        pullJson(r.stdout)
          .images.map((i) => i.digest)
          .sort(),
      ).toEqual(images.map((i) => i.digest).sort())
      const lines = await web.accessLines()
      expect(lines.filter((l) => /"(HEAD|GET) \/v2\/[^ ]+\/manifests\/sha256-/.test(l))).toEqual([])
      expect(
        lines
          .filter((l) => /"GET \/v2\/[^ ]+\/tags\/list\?/.test(l))
          .map((l) => /\/v2\/(.+)\/tags\/list/.exec(l)![1])
          .sort(),
      ).toEqual(['nosig/app-0', 'nosig/app-1', 'nosig/app-2', 'nosig/app-3'])
    } finally {
      await web.stop()
    }
  })
})

describe('airlock pull flushes once for many blobs', () => {
  it('gives no blob its final name before its bytes are flushed, with a few flushes for the whole pull, not one per blob', async () => {
    const dir = await makeTempDir('airlock-pull-flush-')
    const store = join(dir, 'store')
    const file = await manifestFile(
      dir,
      [
        `    - ref: ${reg.host}/${multi.repository}:${multi.tag}`,
        '      platforms: [all]',
        `    - ref: ${reg.host}/${dockerList.repository}:${dockerList.tag}`,
        '      platforms: [all]',
        `    - ${reg.host}/${other.repository}:${other.tag}`,
      ].join('\n') + '\n',
    )
    const r = await straceCli(['pull', file, '--store', store, '--quiet'], dir)
    expect(r.code, r.stderr).toBe(0)
    const blobs = `${store}/images/blobs/sha256/`
    const renamed = r.calls.filter((c) => c.name.startsWith('rename') && c.paths.some((p) => p.startsWith(blobs)))
    expect(renamed.length).toBeGreaterThanOrEqual(15)
    // Crash safety: each blob's bytes on disk (syncfs, or an fsync of it) between its last write and its rename.
    expect(renamedBeforeFlush(r.calls, blobs)).toEqual([])
    // The cost: a syncfs now and then, not an fsync of each blob and of its folder (index.json and records.json keep theirs).
    expect(r.calls.some((c) => c.name === 'syncfs')).toBe(true)
    const perBlob = r.calls.filter(
      (c) =>
        /^f(data)?sync$/.test(c.name) &&
        (c.fdPath?.startsWith(`${store}/images/blobs`) || c.fdPath?.startsWith(`${store}/.tmp/`)),
    )
    expect(perBlob.map((c) => c.fdPath)).toEqual([])
  })
})
