import {spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {repoRoot} from '../helpers/cli.js'
import {type NginxServer, startNginx} from '../helpers/nginx.js'
import {type RegistryServer, startRegistry} from '../helpers/registry.js'
import {type TinyImage, writeTinyImages} from '../helpers/registry-storage.js'
import {makeTempDir} from '../helpers/tmp.js'

// Memory stays flat in the number of images and files: 2,000 small
// two-platform images and 600 small files go through pull, bundle, import
// registry and import nginx, each run under GNU time, whose peak RSS must
// stay under 150 MB (at 2,000 images these commands peaked at 170 to 250 MB
// before their memory was bounded; `npm run bench -- count` measures 4,000).

const IMAGES = 2000
const FILES = 600
const LIMIT_MB = 150

interface Measured {
  code: number
  stderr: string
  rssMb: number
}

/** `airlock ARGS` under /usr/bin/time: exit code, stderr and peak RSS. */
function measured(args: string[]): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      '/usr/bin/time',
      ['-f', 'AIRLOCK_PEAK_RSS_KB=%M', process.execPath, join(repoRoot, 'bin', 'run.js'), ...args, '--quiet'],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: {...process.env, CI: '1', NO_COLOR: '1'},
      },
    )
    let stderr = ''
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
    child.once('error', reject)
    child.once('close', (code) => {
      const m = /AIRLOCK_PEAK_RSS_KB=(\d+)/.exec(stderr)
      resolve({code: code ?? 1, stderr, rssMb: m ? Number(m[1]) / 1024 : Number.NaN})
    })
  })
}

let work: string
let source: RegistryServer
let target: RegistryServer
let www: NginxServer
let images: TinyImage[]

beforeAll(async () => {
  work = await makeTempDir('airlock-count-')
  const data = join(work, 'registry')
  images = await writeTinyImages(data, IMAGES)
  source = await startRegistry({dataDir: data})
  target = await startRegistry()
  const root = join(work, 'www')
  const files: {path: string; sha256: string; kind: 'binaries' | 'packages'}[] = []
  for (let i = 0; i < FILES; i++) {
    const body = Buffer.alloc(1024 * (1 + (i % 8)), `file ${i}\n`)
    const path = i % 5 === 4 ? `pkgs/pkg-${i}.tar` : `release/v1.${i % 20}/bin/tool-${i}`
    await mkdir(join(root, path, '..'), {recursive: true})
    await writeFile(join(root, path), body)
    files.push({
      path,
      sha256: createHash('sha256').update(body).digest('hex'),
      kind: i % 5 === 4 ? 'packages' : 'binaries',
    })
  }
  www = await startNginx({root})
  const lines = ['apiVersion: airlock/v1', 'kind: Manifest', 'metadata:', '  name: count', 'spec:', '  images:']
  for (const img of images)
    lines.push(`    - ref: ${source.host}/${img.repository}:${img.tag}`, '      platforms: [all]')
  for (const kind of ['binaries', 'packages'] as const) {
    lines.push(`  ${kind}:`)
    for (const f of files.filter((x) => x.kind === kind))
      lines.push(`    - url: ${www.url}/${f.path}`, `      sha256: ${f.sha256}`)
  }
  await writeFile(join(work, 'count.yaml'), `${lines.join('\n')}\n`)
}, 300_000)

afterAll(async () => {
  await source?.stop()
  await target?.stop()
  await www?.stop()
})

describe(`memory at ${IMAGES} images and ${FILES} files`, () => {
  it(`pull, bundle, import registry and import nginx each peak under ${LIMIT_MB} MB`, async () => {
    const store = join(work, 'store')
    const bundle = join(work, 'bundle')
    const runs: [string, string[]][] = [
      ['pull', ['pull', join(work, 'count.yaml'), '--store', store]],
      ['bundle', ['bundle', '--store', store, '--out', bundle, '--no-importer']],
      ['import registry', ['import', 'registry', bundle, '--registry', target.host]],
      ['import nginx', ['import', 'nginx', bundle, '--root', join(work, 'root')]],
    ]
    const peaks: Record<string, number> = {}
    for (const [name, args] of runs) {
      const r = await measured(args)
      expect(r.code, `${name}: ${r.stderr}`).toBe(0)
      peaks[name] = Math.round(r.rssMb)
    }
    process.stdout.write(`peak RSS at ${IMAGES} images and ${FILES} files, MB: ${JSON.stringify(peaks)}\n`)
    // All four in one message, should one be over.
    for (const [name, mb] of Object.entries(peaks))
      expect(mb, `${name} peaked at ${mb} MB (${JSON.stringify(peaks)})`).toBeLessThan(LIMIT_MB)
  }, 900_000)
})
