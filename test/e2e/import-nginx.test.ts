import {spawn} from 'node:child_process'
import {readdir, readFile, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {
  fileData,
  type FixtureFile,
  hostileArchives,
  makeBundle,
  makeRawBundle,
  sha256Hex,
} from '../helpers/bundle-fixture.js'
import {runCli} from '../helpers/cli.js'
import {type NginxServer, startNginx} from '../helpers/nginx.js'
import {makeTempDir} from '../helpers/tmp.js'

const FILES: FixtureFile[] = [
  {path: '127.0.0.1:8081/release/v1.29.0/bin/linux/amd64/kubeadm', data: fileData(6_000_000), executable: true},
  {path: '127.0.0.1:8081/release/v1.29.0/bin/linux/amd64/kubelet', data: fileData(4_000_000), executable: true},
  {
    path: 'github.com/containerd/containerd/releases/download/v1.7.13/containerd-1.7.13-linux-amd64.tar.gz',
    data: fileData(700_000),
  },
  {path: 'get.helm.sh/helm-v3.14.0-linux-amd64.tar.gz', data: fileData(300_000)},
  {path: 'example.com/tools/nerdctl-1.7.0-linux-amd64.tar.gz', data: fileData(200_000), kind: 'package'},
  {path: 'charts/nginx-15.1.0.tgz', data: fileData(30_000), kind: 'chart'},
]

const CLUSTER_CONFIG = [
  '# Cluster settings for the installer',
  'apiVersion: v1',
  'kind: ClusterConfig',
  'spec:',
  '  # Where the installer downloads binaries from',
  '  binaries:',
  '    type: internet',
  '  kubernetesVersion: v1.29.0   # pinned',
  '  nodes: [ {name: a},  {name: b} ]',
  '',
].join('\n')

async function files(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, {recursive: true, withFileTypes: true})) {
    if (!e.isDirectory()) out.push(join(e.parentPath, e.name).slice(dir.length + 1))
  }
  return out.sort()
}

describe('airlock import nginx', () => {
  let work: string
  let web: NginxServer
  let bundle: string
  let root: string

  beforeAll(async () => {
    work = await makeTempDir('e2e-import-nginx-')
    bundle = (await makeBundle(join(work, 'bundle'), FILES)).dir
    root = join(work, 'www')
    const {mkdir} = await import('node:fs/promises')
    await mkdir(root)
    web = await startNginx({root})
  })
  afterAll(async () => {
    await web?.stop()
  })

  it('unpacks onto the root that nginx serves and points clusterConfig.yaml at it', async () => {
    const clusterConfig = join(work, 'clusterConfig.yaml')
    await writeFile(clusterConfig, CLUSTER_CONFIG)
    const r = await runCli([
      'import',
      'nginx',
      bundle,
      '--root',
      root,
      '--cluster-config',
      clusterConfig,
      '--endpoint',
      web.url,
      '--json',
    ])
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out.endpoint).toBe(web.url)
    expect(out.counts).toEqual({
      files: FILES.length,
      written: FILES.length,
      skipped: 0,
      bytesWritten: FILES.reduce((n, f) => n + f.data.length, 0),
    })
    expect(out.items).toEqual(
      FILES.map((f) => ({path: f.path, size: f.data.length, sha256: sha256Hex(f.data), action: 'written'})),
    )
    for (const f of FILES) {
      const res = await fetch(`${web.url}/${f.path}`)
      expect(res.status).toBe(200)
      expect(sha256Hex(Buffer.from(await res.arrayBuffer()))).toBe(sha256Hex(f.data))
    }
    expect(await readFile(clusterConfig, 'utf8')).toBe(
      CLUSTER_CONFIG.replace('    type: internet\n', `    type: external\n    externalRepoEndpoint: ${web.url}\n`),
    )
  })

  it('writes nothing the second time', async () => {
    const before = await stat(join(root, FILES[0].path))
    const r = await runCli(['import', 'nginx', bundle, '--root', root, '--json'])
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out.counts.written).toBe(0)
    expect(out.items.every((f: {action: string}) => f.action === 'skipped')).toBe(true)
    expect((await stat(join(root, FILES[0].path))).mtimeMs).toBe(before.mtimeMs)
  })

  it('prints progress lines and a summary without --json', async () => {
    const r = await runCli(['import', 'nginx', bundle, '--root', root])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/0 files written .*6 already there/)
    expect(r.stderr).toMatch(/offline-files\.tar\.gz/)
  })

  it('a SIGKILL in the middle leaves no half-written file under a final name; a re-run completes', async () => {
    const big: FixtureFile[] = Array.from({length: 24}, (_, i) => ({
      path: `big.example/f${String(i).padStart(2, '0')}.bin`,
      data: fileData(4_000_000, i),
    }))
    const b = await makeBundle(join(work, 'big-bundle'), big)
    const target = join(work, 'killed-root')
    const {mkdir} = await import('node:fs/promises')
    await mkdir(target)
    // A file from an earlier bundle that this one replaces: must stay whole (old or new), never torn.
    await mkdir(join(target, 'big.example'))
    await writeFile(join(target, big[5].path), 'old version\n')
    const child = spawn(process.execPath, ['bin/run.js', 'import', 'nginx', b.dir, '--root', target, '--quiet'], {
      stdio: 'ignore',
    })
    const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_code, signal) => r(signal)))
    // Kill while files are being staged.
    for (let i = 0; i < 500; i++) {
      const have = await files(target)
      if (have.filter((p) => p.includes('.airlock-')).length >= 1 && i > 5) break
      await new Promise((r) => setTimeout(r, 10))
    }
    child.kill('SIGKILL')
    // Killed, not finished before the kill: otherwise this test would prove nothing.
    expect(await exited).toBe('SIGKILL')
    const finalNames = (await files(target)).filter((p) => !p.split('/').pop()!.startsWith('.'))
    for (const p of finalNames) {
      const body = await readFile(join(target, p))
      const f = big.find((x) => x.path === p)!
      expect([sha256Hex(f.data), sha256Hex('old version\n')]).toContain(sha256Hex(body))
    }
    const r = await runCli(['import', 'nginx', b.dir, '--root', target, '--json'])
    expect(r.code, r.stderr).toBe(0)
    // Every final file complete, and the killed run's temporary files cleared.
    expect(await files(target)).toEqual(big.map((f) => f.path).sort())
    for (const f of big) expect(sha256Hex(await readFile(join(target, f.path)))).toBe(sha256Hex(f.data))
  })

  it.each(hostileArchives().map((h) => [h.name, h] as const))(
    'refuses a hostile bundle (%s) with exit 2 and nothing outside the root',
    async (name, h) => {
      const dir = await makeTempDir('e2e-hostile-')
      const b = await makeRawBundle(join(dir, 'bundle'), h.listed, h.tgz())
      const target = join(dir, 'www')
      const r = await runCli(['import', 'nginx', b.dir, '--root', target])
      expect(r.code, `${name}: ${r.stderr}`).toBeGreaterThan(0)
      expect(r.stderr).not.toMatch(/at .*\.js:\d+/)
      expect((await files(dir)).filter((p) => !p.startsWith('bundle/') && !p.startsWith('www/'))).toEqual([])
      await expect(files(target)).rejects.toThrow(/ENOENT/)
    },
  )

  it('refuses --cluster-config without --endpoint, and a clusterConfig.yaml without spec', async () => {
    const noEndpoint = await runCli([
      'import',
      'nginx',
      bundle,
      '--root',
      root,
      '--cluster-config',
      join(work, 'x.yaml'),
    ])
    expect(noEndpoint.code).toBe(2)
    const bad = join(work, 'nospec.yaml')
    await writeFile(bad, 'kind: ClusterConfig\n')
    const r = await runCli(['import', 'nginx', bundle, '--root', root, '--cluster-config', bad, '--endpoint', web.url])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/no spec/)
  })
})
