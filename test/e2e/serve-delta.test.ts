import {execFile, spawn} from 'node:child_process'
import {createHash, randomBytes} from 'node:crypto'
import {closeSync, openSync} from 'node:fs'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {stopChild, trackChild} from '../helpers/cleanup.js'
import {repoRoot, runCli} from '../helpers/cli.js'
import {harnessRequest, waitFor} from '../helpers/http.js'
import {type PushedImage, pushImage, randomLayer} from '../helpers/images.js'
import {type NginxServer, startNginx} from '../helpers/nginx.js'
import {freePort} from '../helpers/ports.js'
import {type RegistryServer, startRegistry} from '../helpers/registry.js'
import {makeTempDir} from '../helpers/tmp.js'

// `airlock serve DELTA --base BASE`: a delta bundle (built with --since) served together with its
// base, so images whose layers only the base carries and files the delta left out are all there.

const run = promisify(execFile)
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

let src: RegistryServer
let web: NginxServer
let dir: string
let app1: PushedImage
let app2: PushedImage
let baseLayer: string
const kubeadm = randomBytes(60_000)
const tool = randomBytes(41_000)

function manifest(version: string, images: PushedImage[], files: [string, Buffer][]): string {
  return [
    'apiVersion: airlock/v1',
    'kind: Manifest',
    `metadata: {name: serve-delta, version: "${version}"}`,
    'spec:',
    '  images:',
    ...images.map((i) => `    - ${i.ref}`),
    '  binaries:',
    ...files.map(([p, data]) => `    - {url: "${web.url}/${p}", sha256: ${sha(data)}}`),
    '',
  ].join('\n')
}

async function cli(args: string[]): Promise<void> {
  const r = await runCli(args)
  if (r.code !== 0) throw new Error(`airlock ${args.join(' ')}: exit ${r.code}\n${r.stderr}`)
}

beforeAll(async () => {
  src = await startRegistry()
  web = await startNginx()
  dir = await makeTempDir('airlock-e2e-serve-delta-')
  const base = randomLayer(200_000)
  baseLayer = base.digest
  app1 = await pushImage(src, {repository: 'team/app', tag: '1.0', baseLayers: [base], layerSize: 30_000})
  app2 = await pushImage(src, {repository: 'team/app', tag: '2.0', baseLayers: [base], layerSize: 30_000})
  await mkdir(join(web.root, 'rel'), {recursive: true})
  await writeFile(join(web.root, 'rel', 'kubeadm'), kubeadm)
  await writeFile(join(web.root, 'rel', 'tool'), tool)
  await writeFile(join(dir, 'v1.yaml'), manifest('1.0.0', [app1], [['rel/kubeadm', kubeadm]]))
  await writeFile(
    join(dir, 'v2.yaml'),
    manifest(
      '2.0.0',
      [app2],
      [
        ['rel/kubeadm', kubeadm],
        ['rel/tool', tool],
      ],
    ),
  )
  const store = join(dir, 'store')
  await cli(['build', join(dir, 'v1.yaml'), '--store', store, '--out', join(dir, 'v1'), '--quiet'])
  await cli(['build', join(dir, 'v2.yaml'), '--store', store, '--out', join(dir, 'v2-full'), '--quiet'])
  await cli([
    'bundle',
    '--store',
    store,
    '--manifest',
    join(dir, 'v2.yaml'),
    '--since',
    join(dir, 'v1'),
    '--out',
    join(dir, 'v2-delta'),
    '--quiet',
  ])
}, 170_000)

afterAll(async () => {
  await web?.stop()
  await src?.stop()
})

describe('airlock serve of a delta bundle', () => {
  it('is refused alone, and with a --base that is not its base', async () => {
    const alone = await runCli([
      'serve',
      join(dir, 'v2-delta'),
      '--listen',
      '127.0.0.1:1',
      '--cache-dir',
      join(dir, 'cache'),
    ])
    expect(alone.code).toBe(2)
    expect(alone.stderr).toMatch(/delta bundle.*serve-delta 1\.0\.0/)
    const wrong = await runCli([
      'serve',
      join(dir, 'v2-delta'),
      '--base',
      join(dir, 'v2-full'),
      '--listen',
      '127.0.0.1:1',
      '--cache-dir',
      join(dir, 'cache'),
    ])
    expect(wrong.code).toBe(2)
    expect(wrong.stderr).toMatch(/no --base names/)
  })

  it('with --base serves the whole v2: the image whose base layer only v1 carries, and the file the delta left out', async () => {
    // The delta really leaves them out.
    const {stdout: listed} = await run('tar', ['-tf', join(dir, 'v2-delta', 'offline-images.tar')])
    expect(app2.blobs.map((b) => b.digest)).toContain(baseLayer)
    expect(listed).not.toContain(baseLayer.slice(7))
    const port = await freePort()
    const log = join(dir, 'serve.log')
    const fd = openSync(log, 'a')
    const child = spawn(
      process.execPath,
      [
        join(repoRoot, 'bin', 'run.js'),
        'serve',
        join(dir, 'v2-delta'),
        '--base',
        join(dir, 'v1'),
        '--listen',
        `127.0.0.1:${port}`,
        '--cache-dir',
        join(dir, 'cache'),
      ],
      {
        detached: true,
        stdio: ['ignore', fd, fd],
        env: {...process.env, CI: '1'},
      },
    )
    closeSync(fd)
    trackChild(child)
    const url = `http://127.0.0.1:${port}`
    try {
      await waitFor(
        'airlock serve',
        async () => (await harnessRequest(`${url}/v2/`)).status === 200,
        60_000,
        () => readFile(log, 'utf8'),
      )
      const out = await makeTempDir('airlock-serve-delta-copy-')
      await run('skopeo', [
        'copy',
        '--all',
        '--src-tls-verify=false',
        `docker://127.0.0.1:${port}/team/app:2.0`,
        `dir:${out}`,
      ])
      expect(sha(await readFile(join(out, 'manifest.json')))).toBe(app2.digest.slice(7))
      for (const b of app2.blobs) expect(sha(await readFile(join(out, b.digest.slice(7))))).toBe(b.digest.slice(7))
      const host = new URL(web.url).host
      for (const [p, data] of [
        ['rel/kubeadm', kubeadm],
        ['rel/tool', tool],
      ] as const) {
        const r = await harnessRequest(`${url}/${host}/${p}`)
        expect(r.status, p).toBe(200)
        expect(sha(r.body)).toBe(sha(data))
      }
    } finally {
      await stopChild(child)
    }
  })
})
