import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runCli} from '../helpers/cli.js'
import {startFaultProxy} from '../helpers/proxy.js'
import {type RegistryServer, startRegistry} from '../helpers/registry.js'
import {type BundleFixture, makeRegistryBundle} from '../helpers/registry-bundle-fixture.js'

const run = promisify(execFile)

/** Requests in the registry's access log since `from` lines. */
async function logLines(reg: RegistryServer): Promise<string[]> {
  return (await readFile(reg.logFile, 'utf8'))
    .split('\n')
    .filter((l) => /^\S+ - - \[/.test(l) || /"(GET|HEAD|POST|PUT|PATCH|DELETE) \/v2\//.test(l))
}

function requests(lines: string[], method: string, re: RegExp, status?: number): string[] {
  return lines.filter((l) => {
    const m = /"([A-Z]+) (\S+) HTTP\/[\d.]+" (\d{3})/.exec(l)
    return m !== null && m[1] === method && re.test(m[2]) && (status === undefined || Number(m[3]) === status)
  })
}

/** Blob uploads completed: the closing PUT of an upload session. */
function uploadsOf(lines: string[], digest?: string): string[] {
  const hex = digest ? digest.slice(7) : '[a-f0-9]{64}'
  return requests(lines, 'PUT', new RegExp(`/blobs/uploads/.*digest=sha256(?::|%3A)${hex}`), 201)
}

async function skopeoDigest(ref: string, extra: string[] = []): Promise<string> {
  const {stdout} = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', ...extra, `docker://${ref}`], {
    encoding: 'buffer',
    maxBuffer: 1 << 24,
  })
  return `sha256:${createHash('sha256').update(stdout).digest('hex')}`
}

describe('airlock import registry (plain HTTP)', () => {
  let reg: RegistryServer
  let bundle: BundleFixture

  beforeAll(async () => {
    reg = await startRegistry()
    // Two repositories share a base layer; one image is a multi-arch OCI index, one a Docker manifest list.
    bundle = await makeRegistryBundle(
      [
        {ref: 'docker.io/library/web:1.0', layers: 2, layerSize: 200_000},
        {ref: 'docker.io/library/web:1.1', layers: 1, layerSize: 100_000},
        {ref: 'quay.io/org/multi:2', platforms: ['linux/amd64', 'linux/arm64/v8'], layers: 2, layerSize: 150_000},
        {
          ref: 'registry.k8s.io/dock:1',
          format: 'docker',
          platforms: ['linux/amd64', 'linux/arm64'],
          layers: 1,
          layerSize: 50_000,
        },
      ],
      {sharedLayers: [300_000]},
    )
  })
  afterAll(async () => reg?.stop())

  it('--dry-run verifies the bundle, prints the mapping and pushes nothing', async () => {
    const before = (await logLines(reg)).length
    const r = await runCli([
      'import',
      'registry',
      bundle.dir,
      '--registry',
      reg.host,
      '--namespace',
      'mirror',
      '--dry-run',
    ])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain(`docker.io/library/web:1.0 -> ${reg.host}/mirror/library/web:1.0`)
    expect(r.stdout).toContain(`quay.io/org/multi:2 -> ${reg.host}/mirror/org/multi:2`)
    // The summary is a result: on stdout, last.
    expect(r.stdout.trimEnd().split('\n').pop()).toMatch(
      new RegExp(`^total: ${bundle.images.length} images would be pushed to ${reg.host} \\(dry run`),
    )
    expect((await logLines(reg)).length).toBe(before)
  })

  it('pushes every image (multi-arch included) byte for byte; a shared blob is uploaded once and mounted elsewhere', async () => {
    const before = (await logLines(reg)).length
    const r = await runCli([
      'import',
      'registry',
      bundle.dir,
      '--registry',
      reg.host,
      '--namespace',
      'mirror',
      '--json',
    ])
    expect(r.code, r.stderr).toBe(0)
    const result = JSON.parse(r.stdout) as {
      counts: {images: number}
      items: {source: string; target: string; digest: string}[]
    }
    const rows = result.items
    expect(result.counts.images).toBe(rows.length)
    expect(rows.map((x) => x.source)).toEqual(bundle.lock.images.map((i) => (i as {ref: string}).ref))
    for (const [k, img] of bundle.images.entries()) {
      expect(rows[k].digest).toBe(img.digest)
      expect(await skopeoDigest(rows[k].target)).toBe(img.digest)
    }
    expect(rows.find((x) => x.source === 'registry.k8s.io/dock:1')!.target).toBe(`${reg.host}/mirror/dock:1`)

    const lines = (await logLines(reg)).slice(before)
    const shared = bundle.images[0].blobs.find((b) => bundle.images[2].blobs.some((c) => c.digest === b.digest))!
    expect(shared).toBeDefined()
    // Uploaded into one repository, mounted into the other.
    expect(uploadsOf(lines, shared.digest)).toHaveLength(1)
    expect(requests(lines, 'POST', new RegExp(`mount=sha256(?::|%3A)${shared.digest.slice(7)}`), 201)).toHaveLength(1)
    // Each digest uploaded at most once per repository: no more uploads than unique (repository, blob) pairs.
    const unique = new Set(bundle.images.flatMap((i) => i.blobs.map((b) => b.digest)))
    expect(uploadsOf(lines).length).toBe(unique.size)
    // Into an empty repository, no manifest or tag is asked for first: each sits over blobs just uploaded, so it cannot be there.
    expect(requests(lines, 'HEAD', /\/manifests\//)).toEqual([])
    expect(requests(lines, 'PUT', /\/manifests\//, 201).length).toBeGreaterThan(0)

    // skopeo reads every blob of every target.
    for (const row of rows) await run('skopeo', ['inspect', '--tls-verify=false', `docker://${row.target}`])
    const multi = rows.find((x) => x.source === 'quay.io/org/multi:2')!
    const {stdout} = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${multi.target}`])
    expect((JSON.parse(stdout) as {manifests: unknown[]}).manifests).toHaveLength(2)
  })

  it('a re-import uploads nothing', async () => {
    const before = (await logLines(reg)).length
    const r = await runCli(['import', 'registry', bundle.dir, '--registry', reg.host, '--namespace', 'mirror'])
    expect(r.code, r.stderr).toBe(0)
    const lines = (await logLines(reg)).slice(before)
    expect(requests(lines, 'POST', /\/blobs\/uploads\//)).toHaveLength(0)
    expect(requests(lines, 'PATCH', /./)).toHaveLength(0)
    expect(requests(lines, 'PUT', /./)).toHaveLength(0)
    expect(requests(lines, 'HEAD', /\/blobs\//).length).toBeGreaterThan(0)
  })

  it('--keep-registry-host keeps the source host as the first path component', async () => {
    const r = await runCli(['import', 'registry', bundle.dir, '--registry', reg.host, '--keep-registry-host', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const rows = (JSON.parse(r.stdout) as {items: {source: string; target: string; digest: string}[]}).items
    expect(rows.map((x) => x.target)).toEqual([
      `${reg.host}/docker.io/library/web:1.0`,
      `${reg.host}/docker.io/library/web:1.1`,
      `${reg.host}/quay.io/org/multi:2`,
      `${reg.host}/registry.k8s.io/dock:1`,
    ])
    for (const [k, row] of rows.entries()) expect(await skopeoDigest(row.target)).toBe(bundle.images[k].digest)
  })

  it('ends complete through a registry that answers 503 now and then', async () => {
    const proxy = await startFaultProxy(reg.url, {failEvery: 4, spareRetries: true})
    try {
      const r = await runCli([
        'import',
        'registry',
        bundle.dir,
        '--registry',
        proxy.host,
        '--namespace',
        'flaky',
        '--concurrency',
        '3',
        '--json',
      ])
      expect(r.code, r.stderr).toBe(0)
      expect(proxy.faults).toBeGreaterThan(2)
      const rows = (JSON.parse(r.stdout) as {items: {target: string}[]}).items
      for (const [k, row] of rows.entries()) {
        expect(await skopeoDigest(row.target.replace(proxy.host, reg.host))).toBe(bundle.images[k].digest)
      }
    } finally {
      await proxy.stop()
    }
  })

  it('refuses a bundle that fails verification and pushes nothing', async () => {
    const bad = await makeRegistryBundle([{ref: 'docker.io/library/bad:1'}])
    // One byte of the archive changed after SHA256SUMS was written.
    const tar = join(bad.dir, 'offline-images.tar')
    const bytes = await readFile(tar)
    bytes[bytes.length - 2048] ^= 0xff
    const {writeFile} = await import('node:fs/promises')
    await writeFile(tar, bytes)
    const before = (await logLines(reg)).length
    const r = await runCli(['import', 'registry', bad.dir, '--registry', reg.host])
    expect(r.code).toBe(2)
    expect((await logLines(reg)).length).toBe(before)
  })

  it('refuses a path in --registry as bad usage', async () => {
    const r = await runCli(['import', 'registry', bundle.dir, '--registry', `${reg.host}/ns`])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('--namespace')
  })
})
