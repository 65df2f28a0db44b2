import {type ChildProcess, execFile, spawn} from 'node:child_process'
import {createHash, randomBytes} from 'node:crypto'
import {closeSync, openSync} from 'node:fs'
import {cp, mkdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {makeCerts} from '../helpers/certs.js'
import {stopChild, trackChild} from '../helpers/cleanup.js'
import {repoRoot, runCli} from '../helpers/cli.js'
import {type ContainerdServer, startContainerd} from '../helpers/containerd.js'
import {harnessRequest, waitFor} from '../helpers/http.js'
import {type PushedImage, pushImage} from '../helpers/images.js'
import {type NginxServer, startNginx} from '../helpers/nginx.js'
import {freePort} from '../helpers/ports.js'
import {type RegistryServer, startRegistry} from '../helpers/registry.js'
import {makeTempDir} from '../helpers/tmp.js'

// `airlock serve` answering real clients: skopeo, containerd's ctr, podman, curl. The bundle is
// built by airlock from a real registry (images with real gzip layers, so clients can unpack them)
// and a real nginx (binaries, a package, a Helm chart repository).

const run = promisify(execFile)
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')

interface LockJson {
  images: {ref: string; digest: string; mediaType: string}[]
  files: {kind: string; path: string; size: number; sha256: string}[]
}

interface Served {
  url: string
  host: string
  child: ChildProcess
  log: string
  stop(): Promise<void>
}

/** `airlock serve` as a background process; resolves once /v2/ answers. */
async function startServe(bundle: string, args: string[] = [], scheme = 'http', ca?: string): Promise<Served> {
  const port = await freePort()
  const host = `127.0.0.1:${port}`
  const log = join(await makeTempDir('airlock-serve-log-'), 'serve.log')
  const fd = openSync(log, 'a')
  const child = spawn(
    process.execPath,
    [join(repoRoot, 'bin', 'run.js'), 'serve', bundle, '--listen', host, '--cache-dir', cacheDir, ...args],
    {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: {...process.env, CI: '1', NO_COLOR: '1'},
    },
  )
  closeSync(fd)
  trackChild(child)
  const url = `${scheme}://${host}`
  await waitFor(
    'airlock serve',
    async () => (await harnessRequest(`${url}/v2/`, {ca})).status === 200,
    60_000,
    () => readFile(log, 'utf8'),
  )
  return {url, host, child, log, stop: () => stopChild(child)}
}

let reg: RegistryServer
let web: NginxServer
let bundle: string
let cacheDir: string
let lock: LockJson
let multi: PushedImage
let docker: PushedImage
let dockerList: PushedImage
let big: PushedImage
let server: Served
const chart = randomBytes(9_000)

beforeAll(async () => {
  reg = await startRegistry()
  multi = await pushImage(reg, {
    repository: 'library/multi',
    tag: '1.0',
    platforms: ['linux/amd64', 'linux/arm64'],
    layers: 2,
    layerSize: 300_000,
  })
  docker = await pushImage(reg, {repository: 'team/app', tag: 'v2', format: 'docker', layers: 2, layerSize: 2_000_000})
  dockerList = await pushImage(reg, {
    repository: 'team/list',
    tag: '3',
    format: 'docker',
    platforms: ['linux/amd64', 'linux/arm/v7'],
    layerSize: 50_000,
  })
  // Bigger than what the kernel's socket buffers hold, so a response cut short shows.
  big = await pushImage(reg, {repository: 'team/big', tag: '1', layers: 1, layerSize: 40_000_000})

  const root = await makeTempDir('airlock-serve-web-')
  const files: Record<string, Buffer> = {
    'release/v1/bin/kubeadm': randomBytes(400_000),
    'release/v1/bin/kubeadm.sha256': Buffer.from('not a real checksum file\n'),
    'tools/helm-v3.14.0-linux-amd64.tar.gz': randomBytes(120_000),
    'repo/alpha-1.0.0.tgz': chart,
  }
  for (const [p, data] of Object.entries(files)) {
    await mkdir(join(root, p, '..'), {recursive: true})
    await writeFile(join(root, p), data)
  }
  web = await startNginx({root})
  await writeFile(
    join(root, 'repo', 'index.yaml'),
    `apiVersion: v1\nentries:\n  alpha:\n  - apiVersion: v2\n    name: alpha\n    version: 1.0.0\n    digest: ${sha256(chart)}\n    urls: [alpha-1.0.0.tgz]\ngenerated: "2024-01-01T00:00:00Z"\n`,
  )
  const work = await makeTempDir('airlock-serve-')
  cacheDir = join(work, 'cache')
  bundle = join(work, 'bundle')
  const manifest = join(work, 'airlock.yaml')
  await writeFile(
    manifest,
    [
      'apiVersion: airlock/v1',
      'kind: Manifest',
      'metadata: {name: serve-test, version: "1.0.0"}',
      'spec:',
      '  images:',
      `    - ref: ${multi.ref}`,
      '      platforms: [all]',
      `    - ${docker.ref}`,
      `    - ref: ${dockerList.ref}`,
      '      platforms: [all]',
      `    - ${big.ref}`,
      '  binaries:',
      `    - {url: "${web.url}/release/v1/bin/kubeadm", sha256: ${sha256(files['release/v1/bin/kubeadm'])}}`,
      `    - {url: "${web.url}/release/v1/bin/kubeadm.sha256", sha256: ${sha256(files['release/v1/bin/kubeadm.sha256'])}}`,
      '  packages:',
      `    - {url: "${web.url}/tools/helm-v3.14.0-linux-amd64.tar.gz", sha256: ${sha256(files['tools/helm-v3.14.0-linux-amd64.tar.gz'])}}`,
      `    - chart: {repo: "${web.url}/repo", name: alpha, version: 1.0.0}`,
      '',
    ].join('\n'),
  )
  const b = await runCli(['build', manifest, '--out', bundle, '--store', join(work, 'store'), '--quiet'])
  if (b.code !== 0) throw new Error(`build failed: ${b.stderr}`)
  lock = JSON.parse(await readFile(join(bundle, 'bundle.json'), 'utf8')) as LockJson
  server = await startServe(bundle)
}, 170_000)

afterAll(async () => {
  await server?.stop()
  await reg?.stop()
  await web?.stop()
})

const lockImage = (img: PushedImage) => lock.images.find((i) => i.ref === img.ref)!
/** The repository path of a pushed image without its registry host. */
const path = (img: PushedImage) => img.repository
/** With the host kept, `127.0.0.1:PORT` as `127.0.0.1_PORT`. */
const keptPath = (img: PushedImage) => `${reg.host.replace(':', '_')}/${img.repository}`

describe('airlock serve: registry API', () => {
  it("skopeo copies a multi-arch image and a Docker schema2 image, at bundle.json's digests, by both served names", async () => {
    const out = await makeTempDir('airlock-serve-skopeo-')
    const host = server.host
    // Multi-arch OCI index: the oci: layout keeps it byte for byte.
    await run('skopeo', [
      'copy',
      '--all',
      '--src-tls-verify=false',
      `docker://${host}/${path(multi)}:1.0`,
      `oci:${join(out, 'multi')}:x`,
    ])
    const index = JSON.parse(await readFile(join(out, 'multi', 'index.json'), 'utf8')) as {
      manifests: {digest: string}[]
    }
    expect(index.manifests[0].digest).toBe(lockImage(multi).digest)
    expect(lockImage(multi).digest).toBe(multi.digest)
    await run('skopeo', [
      'copy',
      '--all',
      '--src-tls-verify=false',
      `docker://${host}/${keptPath(multi)}:1.0`,
      `oci:${join(out, 'multi2')}:x`,
    ])
    expect(JSON.parse(await readFile(join(out, 'multi2', 'index.json'), 'utf8')).manifests[0].digest).toBe(multi.digest)

    // Docker schema2: an oci: layout can only hold it converted (new manifest bytes, same layers), so
    // its served bytes are checked through dir:, which keeps the manifest as served.
    await run('skopeo', [
      'copy',
      '--all',
      '--src-tls-verify=false',
      `docker://${host}/${path(docker)}:v2`,
      `oci:${join(out, 'docker-oci')}:x`,
    ])
    await run('skopeo', [
      'copy',
      '--all',
      '--src-tls-verify=false',
      `docker://${host}/${keptPath(docker)}:v2`,
      `dir:${join(out, 'docker-dir')}`,
    ])
    const raw = await readFile(join(out, 'docker-dir', 'manifest.json'))
    expect(`sha256:${sha256(raw)}`).toBe(lockImage(docker).digest)
    expect(JSON.parse(raw.toString()).mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json')
    for (const b of docker.blobs)
      expect(sha256(await readFile(join(out, 'docker-dir', b.digest.slice(7))))).toBe(b.digest.slice(7))

    // A Docker manifest list is served as such (its Content-Type is the list's, not index.json's OCI twin).
    const {stdout} = await run(
      'skopeo',
      ['inspect', '--raw', '--tls-verify=false', `docker://${host}/${path(dockerList)}:3`],
      {encoding: 'buffer'},
    )
    expect(`sha256:${sha256(stdout)}`).toBe(lockImage(dockerList).digest)
  })

  it('manifests by tag and digest, GET and HEAD, with their own media type and Docker-Content-Digest', async () => {
    for (const img of [multi, docker, dockerList]) {
      for (const ref of [img.tag, img.digest]) {
        for (const method of ['GET', 'HEAD']) {
          const r = await harnessRequest(`${server.url}/v2/${path(img)}/manifests/${ref}`, {method})
          expect(r.status, `${method} ${img.ref} ${ref}`).toBe(200)
          expect(r.headers['content-type']).toBe(img.mediaType)
          expect(r.headers['docker-content-digest']).toBe(img.digest)
          expect(Number(r.headers['content-length'])).toBe(img.manifestBytes.length)
          if (method === 'GET') expect(r.body).toEqual(img.manifestBytes)
        }
      }
    }
    const child = dockerList.children![0]
    const c = await harnessRequest(`${server.url}/v2/${keptPath(dockerList)}/manifests/${child.digest}`)
    expect(c.headers['content-type']).toBe('application/vnd.docker.distribution.manifest.v2+json')
    expect(c.body).toEqual(child.manifestBytes)
    // A layer is a blob, not a manifest.
    expect((await harnessRequest(`${server.url}/v2/${path(docker)}/manifests/${docker.blobs[1].digest}`)).status).toBe(
      404,
    )
  })

  it('blobs with Range: 206 with exactly the asked bytes, 416 past the end, HEAD with the size', async () => {
    const layer = docker.blobs.find((b) => b.size > 1_000_000)!
    const url = `${server.url}/v2/${path(docker)}/blobs/${layer.digest}`
    const whole = await harnessRequest(url)
    expect(whole.status).toBe(200)
    expect(sha256(whole.body)).toBe(layer.digest.slice(7))
    const head = await harnessRequest(url, {method: 'HEAD'})
    expect(head.status).toBe(200)
    expect(Number(head.headers['content-length'])).toBe(layer.size)
    expect(head.headers['docker-content-digest']).toBe(layer.digest)
    const cases: [string, number, number][] = [
      ['bytes=0-0', 0, 0],
      ['bytes=1000-1999', 1000, 1999],
      [`bytes=${layer.size - 10}-`, layer.size - 10, layer.size - 1],
      ['bytes=-100', layer.size - 100, layer.size - 1],
      [`bytes=777777-${layer.size + 5000}`, 777777, layer.size - 1],
    ]
    for (const [range, start, end] of cases) {
      const r = await harnessRequest(url, {headers: {range}})
      expect(r.status, range).toBe(206)
      expect(r.headers['content-range']).toBe(`bytes ${start}-${end}/${layer.size}`)
      expect(r.body, range).toEqual(layer.data.subarray(start, end + 1))
    }
    const past = await harnessRequest(url, {headers: {range: `bytes=${layer.size}-`}})
    expect(past.status).toBe(416)
    expect(past.headers['content-range']).toBe(`bytes */${layer.size}`)
    // curl, an independent client, asking for a middle range.
    const {stdout} = await run('curl', ['-sf', '-r', '5000-5099', url], {encoding: 'buffer'})
    expect(stdout).toEqual(layer.data.subarray(5000, 5100))
  })

  it('tags/list and _catalog page with n and last and a Link header', async () => {
    const cat = await harnessRequest(`${server.url}/v2/_catalog`)
    const all = JSON.parse(cat.body.toString()).repositories as string[]
    expect(all).toEqual([...all].sort())
    expect(all).toEqual(
      expect.arrayContaining([
        path(multi),
        keptPath(multi),
        path(docker),
        keptPath(docker),
        path(dockerList),
        keptPath(dockerList),
      ]),
    )
    const seen: string[] = []
    let next: string | undefined = '/v2/_catalog?n=2'
    while (next) {
      const r = await harnessRequest(`${server.url}${next}`)
      const page = JSON.parse(r.body.toString()).repositories as string[]
      expect(page.length).toBeLessThanOrEqual(2)
      seen.push(...page)
      const link = r.headers.link as string | undefined
      next = link ? /^<([^>]+)>; rel="next"$/.exec(link)![1] : undefined
    }
    expect(seen).toEqual(all)
    const tags = await harnessRequest(`${server.url}/v2/${path(multi)}/tags/list`)
    expect(JSON.parse(tags.body.toString())).toEqual({name: path(multi), tags: ['1.0']})
    const last = await harnessRequest(`${server.url}/v2/${path(multi)}/tags/list?n=5&last=1.0`)
    expect(JSON.parse(last.body.toString()).tags).toEqual([])
    expect((await harnessRequest(`${server.url}/v2/nope/tags/list`)).status).toBe(404)
  })

  it('the referrers API answers an OCI index (empty where the bundle has none), with the artifactType filter header', async () => {
    const r = await harnessRequest(
      `${server.url}/v2/${path(multi)}/referrers/${multi.digest}?artifactType=application/vnd.example.sbom`,
    )
    expect(r.status).toBe(200)
    expect(r.headers['content-type']).toBe('application/vnd.oci.image.index.v1+json')
    expect(r.headers['oci-filters-applied']).toBe('artifactType')
    expect(JSON.parse(r.body.toString())).toEqual({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [],
    })
  })

  it('writes get 405 with an OCI error body; .. and unknown digests get 404', async () => {
    const targets = [
      `/v2/${path(docker)}/manifests/v2`,
      `/v2/${path(docker)}/blobs/uploads/`,
      `/v2/${path(docker)}/blobs/${docker.blobs[0].digest}`,
      '/release/v1/bin/kubeadm',
    ]
    for (const method of ['PUT', 'POST', 'DELETE', 'PATCH']) {
      for (const t of targets) {
        const r = await harnessRequest(`${server.url}${t}`, {method, body: 'x'})
        expect(r.status, `${method} ${t}`).toBe(405)
        if (t.startsWith('/v2/')) expect(JSON.parse(r.body.toString()).errors[0].code).toBe('UNSUPPORTED')
      }
    }
    const unknown = `sha256:${'0'.repeat(64)}`
    expect((await harnessRequest(`${server.url}/v2/${path(docker)}/blobs/${unknown}`)).status).toBe(404)
    expect(
      JSON.parse((await harnessRequest(`${server.url}/v2/${path(docker)}/blobs/${unknown}`)).body.toString()).errors[0]
        .code,
    ).toBe('BLOB_UNKNOWN')
    expect((await harnessRequest(`${server.url}/v2/${path(docker)}/manifests/${unknown}`)).status).toBe(404)
    expect((await harnessRequest(`${server.url}/v2/${path(docker)}/manifests/nosuchtag`)).status).toBe(404)
    expect((await harnessRequest(`${server.url}/v2/not/there/manifests/v2`)).status).toBe(404)
    const kubeadm = lock.files.find((f) => f.path.endsWith('bin/kubeadm'))!
    for (const p of [
      `/v2/${path(docker)}/../${path(docker)}/manifests/v2`,
      `/${kubeadm.path.replace('/bin/', '/bin/../bin/')}`,
      `/${kubeadm.path.replace('/bin/', '/bin/%2e%2e/bin/')}`,
      '/../../../../etc/passwd',
      '/%2e%2e/%2e%2e/etc/passwd',
      '/nothing/here',
      '/',
    ]) {
      const {stdout} = await run('curl', [
        '-s',
        '--path-as-is',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        `${server.url}${p}`,
      ])
      expect(stdout, p).toBe('404')
    }
  })

  it('50 clients pulling at once all get correct bytes', async () => {
    const blobs = [...docker.blobs, ...multi.blobs]
    const results = await Promise.all(
      Array.from({length: 50}, async (_, i) => {
        const b = blobs[i % blobs.length]
        const r = await harnessRequest(`${server.url}/v2/${path(docker)}/blobs/${b.digest}`, {timeoutMs: 120_000})
        return r.status === 200 && sha256(r.body) === b.digest.slice(7)
      }),
    )
    expect(results.filter((ok) => !ok)).toEqual([])
  })

  it('podman pulls from it', async () => {
    const dir = await makeTempDir('airlock-serve-podman-')
    const base = ['--root', join(dir, 'root'), '--runroot', join(dir, 'run'), '--storage-driver', 'vfs']
    const ref = `${server.host}/${path(multi)}:1.0`
    await run('podman', [...base, 'pull', '--tls-verify=false', ref], {maxBuffer: 16 << 20}).catch(
      (err: {stderr?: string}) => {
        throw new Error(`podman pull: ${err.stderr}`)
      },
    )
    const {stdout} = await run('podman', [...base, 'image', 'inspect', '--format', '{{.Digest}}', ref])
    expect(stdout.trim()).toBe(multi.digest)
  })
})

describe('airlock serve: containerd', () => {
  let ctrd: ContainerdServer
  beforeAll(async () => {
    ctrd = await startContainerd()
  })
  afterAll(async () => {
    await ctrd?.stop()
  })

  it('ctr pulls by the served name over plain HTTP', async () => {
    const ref = `${server.host}/${path(docker)}:v2`
    await ctrd.ctr(['images', 'pull', '--plain-http', '--snapshotter', 'native', ref])
    const {stdout} = await ctrd.ctr(['images', 'ls'])
    expect(stdout).toContain(ref)
    expect(stdout).toContain(docker.digest)
  })

  it('ctr pulls by the original name through the printed hosts.toml, with the source registry gone', async () => {
    const hosts = await makeTempDir('airlock-serve-hosts-')
    const p = await runCli(['serve', bundle, '--listen', server.host, '--print-mirror-config', 'containerd'])
    expect(p.code).toBe(0)
    expect(p.stdout).toBe(
      `# ${reg.host}/hosts.toml\nserver = "https://${reg.host}"\n\n[host."${server.url}"]\n  capabilities = ["pull", "resolve"]\n\n`,
    )
    for (const block of p.stdout.split(/^# /m).filter(Boolean)) {
      const [first, ...rest] = block.split('\n')
      await mkdir(join(hosts, first, '..'), {recursive: true})
      await writeFile(join(hosts, first), rest.join('\n'))
    }
    await reg.stop()
    await ctrd.ctr(['images', 'pull', '--hosts-dir', hosts, '--snapshotter', 'native', multi.ref])
    const {stdout} = await ctrd.ctr(['images', 'ls'])
    expect(stdout).toContain(multi.ref)
    expect(stdout).toContain(multi.digest)
    // containerd asked the mirror, naming the source registry.
    expect(await readFile(server.log, 'utf8')).toContain(
      `"HEAD /v2/${path(multi)}/manifests/1.0?ns=${encodeURIComponent(reg.host)} HTTP/1.1" 200`,
    )
  })
})

describe('airlock serve: files', () => {
  it('every file of both archives at its mirrored path, with the right sha256 and a sane Content-Type; Range works', async () => {
    expect(lock.files.map((f) => f.path)).toContain('charts/index.yaml')
    for (const f of lock.files) {
      const {stdout} = await run(
        'curl',
        ['-sf', `${server.url}/${f.path.split('/').map(encodeURIComponent).join('/')}`],
        {encoding: 'buffer', maxBuffer: 64 << 20},
      )
      expect(sha256(stdout), f.path).toBe(f.sha256)
    }
    const types = async (p: string) =>
      (await harnessRequest(`${server.url}/${p}`, {method: 'HEAD'})).headers['content-type']
    expect(await types('charts/index.yaml')).toMatch(/yaml/)
    expect(await types('charts/alpha-1.0.0.tgz')).toBe('application/gzip')
    const kubeadm = lock.files.find((f) => f.path.endsWith('bin/kubeadm'))!
    expect(await types(kubeadm.path)).toBe('application/octet-stream')
    const r = await harnessRequest(`${server.url}/${kubeadm.path}`, {headers: {range: 'bytes=100-199'}})
    expect(r.status).toBe(206)
    expect(r.body.length).toBe(100)
    const whole = (await harnessRequest(`${server.url}/${kubeadm.path}`)).body
    expect(r.body).toEqual(whole.subarray(100, 200))
  })

  it('a second start finds the verified cache and serves the same; TLS with --tls-cert/--tls-key', async () => {
    const certs = await makeCerts(await makeTempDir('airlock-serve-certs-'))
    const ca = await readFile(certs.caFile)
    const s = await startServe(
      bundle,
      ['--tls-cert', certs.certFile, '--tls-key', certs.keyFile],
      'https',
      ca.toString(),
    )
    try {
      const f = lock.files[0]
      const r = await harnessRequest(`${s.url}/${f.path}`, {ca})
      expect(sha256(r.body)).toBe(f.sha256)
      expect(await readFile(s.log, 'utf8')).toMatch(/0 written, \d+ already there/)
    } finally {
      await s.stop()
    }
    expect(s.child.exitCode).toBe(0)
    const log = await readFile(s.log, 'utf8')
    expect(log).toMatch(/^127\.0\.0\.1 "GET \/\S+ HTTP\/1\.1" 200 \d+ [\d.]+ms$/m)
  })
})

describe('airlock serve: stopping', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)('%s lets a download under way finish, then exits 0', async (sig) => {
    const s = await startServe(bundle)
    const layer = big.blobs.find((b) => b.size > 1_000_000)!
    // About 3 s at 12 MB/s: the signal arrives in the middle of it, with more left than socket buffers hold.
    const download = run('curl', ['-sf', '--limit-rate', '12M', `${s.url}/v2/${path(big)}/blobs/${layer.digest}`], {
      encoding: 'buffer',
      maxBuffer: 64 << 20,
    })
    await new Promise((r) => setTimeout(r, 500))
    const exited = new Promise<number | null>((resolve) => s.child.once('exit', (code) => resolve(code)))
    process.kill(s.child.pid!, sig)
    const {stdout} = await download
    expect(sha256(stdout)).toBe(layer.digest.slice(7))
    expect(await exited).toBe(0)
    expect(await readFile(s.log, 'utf8')).toContain(`${sig}: stopping`)
    // Nothing listens any more.
    await expect(harnessRequest(`${s.url}/v2/`)).rejects.toThrow(/ECONNREFUSED/)
  })
})

describe('airlock serve: its result', () => {
  it('prints where each image and file is served on stdout, and with --json one document when it stops', async () => {
    const port = await freePort()
    const start = (json: boolean) => {
      const child = spawn(
        process.execPath,
        [
          join(repoRoot, 'bin', 'run.js'),
          'serve',
          bundle,
          '--listen',
          `127.0.0.1:${port}`,
          '--cache-dir',
          cacheDir,
          '--quiet',
          ...(json ? ['--json'] : []),
        ],
        {
          detached: true,
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      )
      trackChild(child)
      let out = ''
      child.stdout!.on('data', (b: Buffer) => (out += b.toString()))
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
      return {child, exited, out: () => out}
    }
    const human = start(false)
    await waitFor('serve', async () => human.out().includes('total:'), 60_000)
    expect(human.out()).toContain(`/v2/${path(docker)}:v2 /v2/${keptPath(docker)}:v2`)
    expect(human.out()).toMatch(
      new RegExp(`total: 4 images, ${lock.files.length} files at http://127\\.0\\.0\\.1:${port}`),
    )
    process.kill(human.child.pid!, 'SIGTERM')
    expect(await human.exited).toBe(0)

    const json = start(true)
    await waitFor('serve', async () => (await harnessRequest(`http://127.0.0.1:${port}/v2/`)).status === 200, 60_000)
    await harnessRequest(`http://127.0.0.1:${port}/${lock.files[0].path}`)
    process.kill(json.child.pid!, 'SIGTERM')
    expect(await json.exited).toBe(0)
    const doc = JSON.parse(json.out())
    expect(doc).toMatchObject({url: `http://127.0.0.1:${port}`, counts: {images: 4, files: lock.files.length}})
    expect(doc.counts.requests).toBeGreaterThanOrEqual(2)
    expect(doc.items).toContainEqual({
      kind: 'image',
      ref: multi.ref,
      digest: multi.digest,
      mediaType: multi.mediaType,
      paths: [`${path(multi)}:1.0`, `${keptPath(multi)}:1.0`],
    })
  })
})

describe('airlock serve: refusals', () => {
  it('exits 2 without serving when the bundle fails verification', async () => {
    const bad = await makeTempDir('airlock-serve-bad-')
    await cp(bundle, bad, {recursive: true})
    const tar = await readFile(join(bad, 'offline-images.tar'))
    tar[tar.length - 3000] ^= 0xff
    await writeFile(join(bad, 'offline-images.tar'), tar)
    const port = await freePort()
    const r = await runCli(['serve', bad, '--listen', `127.0.0.1:${port}`, '--cache-dir', join(bad, 'cache')], {
      timeoutMs: 60_000,
    })
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/failed verification/)
    expect(r.stderr).not.toMatch(/serving/)
  })

  it('refuses a delta bundle without --base, naming its base', async () => {
    const delta = await makeTempDir('airlock-serve-delta-')
    await cp(bundle, delta, {recursive: true})
    const l = JSON.parse(await readFile(join(delta, 'bundle.json'), 'utf8'))
    l.base = [{name: 'k8s-base', version: '1.0.0', lockSha256: 'a'.repeat(64)}]
    await writeFile(join(delta, 'bundle.json'), JSON.stringify(l))
    const r = await runCli(['serve', delta, '--listen', '127.0.0.1:1', '--cache-dir', join(delta, 'cache')])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/delta bundle.*k8s-base 1\.0\.0/)
    expect(r.stderr).toMatch(/--base/)
  })

  it('--listen and --advertise are checked', async () => {
    expect((await runCli(['serve', bundle, '--listen', 'nope'])).code).toBe(2)
    const a = await runCli([
      'serve',
      bundle,
      '--print-mirror-config',
      'containerd',
      '--advertise',
      'http://seed.example:5000',
    ])
    expect(a.code).toBe(0)
    expect(a.stdout).toContain('[host."http://seed.example:5000"]')
    expect(
      (await runCli(['serve', bundle, '--print-mirror-config', 'containerd', '--advertise', 'ftp://x'])).code,
    ).toBe(2)
  })
})
