import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {parse as parseYaml} from 'yaml'

import {runCli} from '../helpers/cli.js'
import {type ContainerdServer, startContainerd} from '../helpers/containerd.js'
import {harnessRequest} from '../helpers/http.js'
import {sbomArtifact} from '../helpers/referrers.js'
import {type RegistryServer, startRegistry} from '../helpers/registry.js'
import {type BundleFixture, type FixtureImage, makeRegistryBundle} from '../helpers/registry-bundle-fixture.js'
import {makeTempDir} from '../helpers/tmp.js'

const run = promisify(execFile)
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`

/**
 * --map, --max-path-depth and --mirror-config against the real distribution
 * registry, skopeo and containerd. The bundle's images are named after a
 * source registry on a loopback port that nothing listens on (a registry
 * started for the port, then stopped): a pull by an original name that
 * reaches the target proves the config sent it there, and the controls
 * (without the config) fail on that closed port, never reaching outside.
 */

let source: string
let bundle: BundleFixture
let multi: FixtureImage
let plain: FixtureImage
let deep: FixtureImage
let ctrd: ContainerdServer
const registries: RegistryServer[] = []

const newRegistry = async (): Promise<RegistryServer> => {
  const r = await startRegistry()
  registries.push(r)
  return r
}

const repoOf = (ref: string) => ref.slice(source.length + 1).replace(/:[^:/]+$/, '')
const tagOf = (ref: string) => ref.slice(ref.lastIndexOf(':') + 1)

/** The manifest at `repository:reference` in `reg`, its bytes hashed: the digest it has there. */
async function digestAt(reg: RegistryServer, repository: string, reference: string): Promise<string | undefined> {
  const accept =
    'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json'
  const r = await harnessRequest(`${reg.url}/v2/${repository}/manifests/${reference}`, {headers: {accept}})
  return r.status === 200 ? sha256(r.body) : undefined
}

async function catalog(reg: RegistryServer): Promise<string[]> {
  const r = await harnessRequest(`${reg.url}/v2/_catalog`)
  return (JSON.parse(r.body.toString('utf8')) as {repositories: string[]}).repositories
}

/** An empty containers-registries.conf: the control, independent of /etc/containers. */
let emptyConf: string

const skopeo = (args: string[]) =>
  run('skopeo', args, {maxBuffer: 16 << 20}).then(
    (r) => ({ok: true, stdout: r.stdout, stderr: r.stderr}),
    (err: {stdout?: string; stderr?: string}) => ({ok: false, stdout: err.stdout ?? '', stderr: err.stderr ?? ''}),
  )

beforeAll(async () => {
  // The source registry's address, with nothing behind it once the test runs.
  const gone = await startRegistry()
  source = gone.host
  await gone.stop()
  bundle = await makeRegistryBundle([
    {
      ref: `${source}/calico/node:v3.27.0`,
      platforms: ['linux/amd64', 'linux/arm64'],
      referrers: (root) => [sbomArtifact({digest: root.digest, mediaType: root.mediaType, size: root.size}, 'node')],
    },
    {ref: `${source}/library/web:1.0`},
    {ref: `${source}/team/tools/ci/runner:2`},
  ])
  ;[multi, plain, deep] = bundle.images
  emptyConf = join(await makeTempDir('airlock-regconf-'), 'empty.conf')
  await writeFile(emptyConf, '')
  ctrd = await startContainerd()
}, 300_000)

afterAll(async () => {
  await ctrd?.stop()
  for (const r of registries) await r.stop()
})

describe('import registry --map --max-path-depth', () => {
  it('refuses a collision before anything is pushed, naming both sources', async () => {
    const reg = await newRegistry()
    const p = await runCli([
      'import',
      'registry',
      bundle.dir,
      '--registry',
      reg.host,
      '--map',
      `${source}/calico/node=library/web`,
      '--json',
    ])
    expect(p.code, p.stderr).toBe(2)
    const err = JSON.parse(p.stdout) as {error: {kind: string; message: string}}
    expect(err.error.kind).toBe('usage')
    expect(err.error.message).toBe(
      `${source}/calico/node and ${source}/library/web would both land in ${reg.host}/library/web`,
    )
    expect(await catalog(reg)).toEqual([])
  })

  it('--dry-run prints every source -> target and pushes nothing', async () => {
    const reg = await newRegistry()
    const p = await runCli([
      'import',
      'registry',
      bundle.dir,
      '--registry',
      reg.host,
      '--namespace',
      'ns',
      '--map',
      `${source}/calico=tools/calico`,
      '--max-path-depth',
      '2',
      '--dry-run',
    ])
    expect(p.code, p.stderr).toBe(0)
    expect(p.stdout).toContain(`${multi.ref} -> ${reg.host}/ns/tools-calico/node:v3.27.0\n`)
    expect(p.stdout).toContain(`${plain.ref} -> ${reg.host}/ns/library/web:1.0\n`)
    expect(p.stdout).toContain(`${deep.ref} -> ${reg.host}/ns/team-tools-ci/runner:2\n`)
    expect(await catalog(reg)).toEqual([])
  })

  let mapped: RegistryServer
  let configDir: string

  it('lands each image where asked, byte for byte, referrers with their subject; the progress lines and --json show the mapping', async () => {
    mapped = await newRegistry()
    configDir = await makeTempDir('airlock-mirror-config-')
    const p = await runCli([
      'import',
      'registry',
      bundle.dir,
      '--registry',
      mapped.host,
      '--namespace',
      'ns',
      '--map',
      `${source}/calico=tools/calico`,
      '--max-path-depth',
      '2',
      '--mirror-config',
      configDir,
      '--json',
    ])
    expect(p.code, p.stderr).toBe(0)
    const result = JSON.parse(p.stdout) as {
      items: {source: string; target: string; digest: string}[]
      mirrorConfig: string[]
    }
    const where = {
      [multi.ref]: 'ns/tools-calico/node',
      [plain.ref]: 'ns/library/web',
      [deep.ref]: 'ns/team-tools-ci/runner',
    }
    expect(result.items.map((i) => [i.source, i.target])).toEqual(
      bundle.images.map((i) => [i.ref, `${mapped.host}/${where[i.ref]}:${tagOf(i.ref)}`]),
    )
    for (const img of bundle.images) {
      expect(p.stderr, 'progress line').toContain(`${img.ref} -> ${mapped.host}/${where[img.ref]}:${tagOf(img.ref)}`)
      expect(await digestAt(mapped, where[img.ref], tagOf(img.ref)), img.ref).toBe(img.digest)
      expect(await digestAt(mapped, where[img.ref], img.digest)).toBe(img.digest)
      for (const child of img.children) expect(await digestAt(mapped, where[img.ref], child)).toBe(child)
    }
    // The SBOM went with its subject, into the mapped repository.
    const sbom = multi.referrers[0]
    expect(await digestAt(mapped, 'ns/tools-calico/node', sbom.digest)).toBe(sbom.digest)
    expect((await catalog(mapped)).sort()).toEqual([
      'ns/library/web',
      'ns/team-tools-ci/runner',
      'ns/tools-calico/node',
    ])
    // What containerd's file cannot express: on stderr, naming the images, and in the file.
    expect(p.stderr).toContain('containerd cannot rename a repository')
    expect(p.stderr).toContain(`${source}/calico/node (at ${mapped.host}/ns/tools-calico/node)`)
    expect(p.stderr).toContain(`${source}/team/tools/ci/runner (at ${mapped.host}/ns/team-tools-ci/runner)`)
    expect(p.stderr).not.toContain(`${source}/library/web (at`)
    const hosts = await readFile(join(configDir, 'containerd/certs.d', source, 'hosts.toml'), 'utf8')
    expect(hosts).toContain(`#   ${source}/calico/node -> ${mapped.host}/ns/tools-calico/node`)
    expect(result.mirrorConfig.sort()).toEqual(
      [
        join(configDir, 'containerd/certs.d', source, 'hosts.toml'),
        join(configDir, 'registries.conf'),
        join(configDir, 'registries.yaml'),
      ].sort(),
    )
  })

  it('inventory registry with the same flags finds every image; without them, none', async () => {
    const out = join(await makeTempDir('airlock-inv-'), 'have.json')
    const flags = [
      '--registry',
      mapped.host,
      '--namespace',
      'ns',
      '--map',
      `${source}/calico=tools/calico`,
      '--max-path-depth',
      '2',
      '--lock',
      bundle.dir,
      '--out',
      out,
      '--json',
    ]
    const p = await runCli(['inventory', 'registry', ...flags])
    expect(p.code, p.stderr).toBe(0)
    expect((JSON.parse(p.stdout) as {counts: {images: number}}).counts.images).toBe(3)
    const q = await runCli([
      'inventory',
      'registry',
      ...flags.filter(
        (f, i, a) =>
          f !== '--map' && a[i - 1] !== '--map' && f !== '--max-path-depth' && a[i - 1] !== '--max-path-depth',
      ),
    ])
    expect(q.code, q.stderr).toBe(0)
    expect((JSON.parse(q.stdout) as {counts: {images: number}}).counts.images).toBe(1)
  })

  it('registries.conf: skopeo finds every image by its original name; without it, it cannot', async () => {
    const conf = join(configDir, 'registries.conf')
    for (const img of bundle.images) {
      const control = await skopeo(['inspect', '--raw', '--registries-conf', emptyConf, `docker://${img.ref}`])
      expect(control.ok, `${img.ref} without the config`).toBe(false)
      const r = await skopeo(['inspect', '--raw', '--registries-conf', conf, `docker://${img.ref}`])
      expect(r.ok, `${img.ref}: ${r.stderr}`).toBe(true)
      expect(sha256(Buffer.from(r.stdout)), img.ref).toBe(img.digest)
    }
  })

  it('registries.yaml: k3s rewrite rules send every original path where the image is; without them, nothing is there', async () => {
    await expectK3sFinds(join(configDir, 'registries.yaml'), mapped)
  })

  it('containerd hosts.toml: ctr fetches by the original name what a path prefix can reach, and not the renamed ones (as warned)', async () => {
    const hostsDir = join(configDir, 'containerd/certs.d')
    await expect(ctrd.ctr(['content', 'fetch', plain.ref])).rejects.toThrow()
    await ctrd.ctr(['content', 'fetch', '--hosts-dir', hostsDir, plain.ref])
    expect((await ctrd.ctr(['images', 'ls'])).stdout).toMatch(new RegExp(`${escape(plain.ref)}\\s.*${plain.digest}`))
    // The mirror answers 404 at the path a prefix gives; containerd then falls back to the (closed) source.
    await expect(ctrd.ctr(['content', 'fetch', '--hosts-dir', hostsDir, deep.ref])).rejects.toThrow(/StatusNotFound/)
  })
})

describe('import registry --namespace --mirror-config: every image through a path prefix', () => {
  let reg: RegistryServer
  let dir: string
  beforeAll(async () => {
    reg = await newRegistry()
    dir = await makeTempDir('airlock-mirror-config-ns-')
    const p = await runCli([
      'import',
      'registry',
      bundle.dir,
      '--registry',
      reg.host,
      '--namespace',
      'mirror/k8s',
      '--mirror-config',
      dir,
    ])
    expect(p.code, p.stderr).toBe(0)
    expect(p.stderr).not.toContain('containerd cannot rename')
  }, 300_000)

  it('containerd: ctr fetches each image by its original name through override_path; without --hosts-dir it cannot', async () => {
    const hosts = await readFile(join(dir, 'containerd/certs.d', source, 'hosts.toml'), 'utf8')
    expect(hosts).toBe(
      `server = "https://${source}"\n\n[host."http://${reg.host}/v2/mirror/k8s"]\n  capabilities = ["pull", "resolve"]\n  override_path = true\n`,
    )
    for (const img of [multi, deep]) {
      await expect(ctrd.ctr(['content', 'fetch', img.ref])).rejects.toThrow()
      await ctrd.ctr(['content', 'fetch', '--hosts-dir', join(dir, 'containerd/certs.d'), img.ref])
      expect((await ctrd.ctr(['images', 'ls'])).stdout).toMatch(new RegExp(`${escape(img.ref)}\\s.*${img.digest}`))
    }
  })

  it('registries.yaml with a $1 rule, and registries.conf, both find every image', async () => {
    const yaml = await readFile(join(dir, 'registries.yaml'), 'utf8')
    expect(yaml).toContain('"^(.*)$": "mirror/k8s/$1"')
    await expectK3sFinds(join(dir, 'registries.yaml'), reg)
    for (const img of bundle.images) {
      const r = await skopeo([
        'inspect',
        '--raw',
        '--registries-conf',
        join(dir, 'registries.conf'),
        `docker://${img.ref}`,
      ])
      expect(r.ok, `${img.ref}: ${r.stderr}`).toBe(true)
      expect(sha256(Buffer.from(r.stdout))).toBe(img.digest)
    }
  })
})

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/**
 * Go's Regexp.Expand for a ReplaceAllString template: `$$` is `$`; `$name`
 * takes the longest run of letters, digits and `_` (so `$1x` is the group
 * named "1x": empty), `${name}` is braced; a number names a group by
 * index, an unknown group is empty.
 */
function expandGo(template: string, groups: (string | undefined)[]): string {
  let out = ''
  for (let i = 0; i < template.length; i++) {
    const c = template[i]
    if (c !== '$') {
      out += c
      continue
    }
    if (template[i + 1] === '$') {
      out += '$'
      i++
      continue
    }
    let name: string
    const braced = template[i + 1] === '{' ? /^\{([A-Za-z0-9_]+)\}/.exec(template.slice(i + 1)) : null
    if (braced) {
      name = braced[1]
      i += braced[0].length
    } else {
      const m = /^[A-Za-z0-9_]+/.exec(template.slice(i + 1))
      if (!m) {
        out += '$' // Go keeps a `$` it cannot read as a reference
        continue
      }
      name = m[0]
      i += name.length
    }
    out += /^\d+$/.test(name) ? (groups[Number(name)] ?? '') : ''
  }
  return out
}

/** Go's ReplaceAllString: every non-overlapping match replaced by the expanded template. */
function goReplaceAll(pattern: string, input: string, template: string): string {
  return input.replace(new RegExp(pattern, 'g'), (...args: unknown[]) => {
    const n = args.findIndex((a) => typeof a === 'number')
    return expandGo(template, args.slice(0, n) as (string | undefined)[])
  })
}

/**
 * k3s's rewrite, as its containerd applies it to a mirror endpoint: the
 * rules are tried in no fixed order and the first that changes the
 * repository path wins, so exactly one may change any path. The image must
 * be at the rewritten path of the endpoint, and not at the original one
 * (the control: without the rule nothing is found).
 */
async function expectK3sFinds(file: string, reg: RegistryServer): Promise<void> {
  const doc = parseYaml(await readFile(file, 'utf8')) as {
    mirrors: Record<string, {endpoint: string[]; rewrite?: Record<string, string>}>
  }
  expect(Object.keys(doc.mirrors)).toEqual([source])
  const mirror = doc.mirrors[source]
  expect(mirror.endpoint).toEqual([reg.url])
  for (const img of bundle.images) {
    const original = repoOf(img.ref)
    const changed = Object.entries(mirror.rewrite ?? {})
      .map(([pattern, template]) => goReplaceAll(pattern, original, template))
      .filter((r) => r !== original)
    expect(changed.length, `${original}: rules that change it`).toBe(1)
    expect(await digestAt(reg, changed[0], tagOf(img.ref)), `${original} -> ${changed[0]}`).toBe(img.digest)
    expect(await digestAt(reg, original, tagOf(img.ref)), `${original} as it is`).toBeUndefined()
  }
}

describe('the go replacement reader of this test', () => {
  it('reads $1, ${1}, $$ and $1x as Go does', () => {
    expect(goReplaceAll('^(.*)$', 'a/b', 'ns/$1')).toBe('ns/a/b')
    expect(goReplaceAll('^(.*)$', 'a/b', 'ns/${1}x')).toBe('ns/a/bx')
    expect(goReplaceAll('^(.*)$', 'a/b', 'ns/$1x')).toBe('ns/')
    expect(goReplaceAll('^(.*)$', 'a/b', '$$1')).toBe('$1')
  })
})
