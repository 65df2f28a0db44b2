/**
 * Benchmark: the cost of the count, not the size. Many tiny multi-arch images
 * and many small files through `pull`, `bundle`, `import registry` and
 * `import nginx`, each against the usual tool doing the same in the same run:
 *
 *   pull             skopeo sync --all (registry -> dir) + curl of every file
 *   bundle           GNU tar -cf of the image layout + tar -czf of files/ and packages/
 *   import registry  skopeo sync --all (that dir -> a fresh registry)
 *   import nginx     GNU tar -xzf of the two file archives
 *
 * Prints time and peak RSS of every run (GNU time), airlock's and the
 * reference's. The goal: airlock's memory flat in the count (under 150 MB at
 * 4,000 images), its per-entry cost close to tar's.
 *
 *   node --import tsx scripts/bench/count.ts
 *
 * The images (2 platforms each: a config, a shared base layer and a 512-byte
 * own layer per platform) are written straight into the registry's storage
 * folder once and kept under ~/.cache/airlock-bench (AIRLOCK_BENCH_CACHE),
 * so a second run starts at once.
 *
 * Knobs (env): BENCH_COUNT (1000 images), BENCH_FILES (1000 files),
 * BENCH_CONCURRENCY (8), BENCH_REFERENCE (1; 0 runs airlock alone: skopeo
 * takes minutes per thousand images).
 */
import {createHash} from 'node:crypto'
import {mkdir, readdir, rm, stat, writeFile} from 'node:fs/promises'
import {homedir} from 'node:os'
import {join} from 'node:path'

import {startNginx} from '../../test/helpers/nginx.js'
import {countImageStorage} from '../../test/helpers/registry-storage.js'
import {startRegistry} from '../../test/helpers/registry.js'
import {makeTempDir} from '../../test/helpers/tmp.js'
import {check, MB, root, secs, timed, type Timed} from '../bench-lib.js'

const COUNT = Number(process.env.BENCH_COUNT ?? 1000)
const FILES = Number(process.env.BENCH_FILES ?? 1000)
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8)
const REFERENCE = process.env.BENCH_REFERENCE !== '0'
const cache = process.env.AIRLOCK_BENCH_CACHE ?? join(homedir(), '.cache', 'airlock-bench')
const cli = join(root, 'bin/run.js')

async function du(dir: string): Promise<{bytes: number; files: number}> {
  let bytes = 0
  let files = 0
  for (const e of await readdir(dir, {withFileTypes: true, recursive: true})) {
    if (!e.isFile()) continue
    bytes += (await stat(join(e.parentPath ?? (e as unknown as {path: string}).path, e.name))).size
    files++
  }
  return {bytes, files}
}

/** Small files of 1-16 KB, fixed bytes, one in five a package. */
function fileSpec(i: number): {path: string; kind: 'binaries' | 'packages'; data: Buffer} {
  const size = 1024 * (1 + (i % 16))
  const data = Buffer.alloc(size)
  for (let off = 0, k = 0; off < size; k++) off += createHash('sha256').update(`file/${i}/${k}`).digest().copy(data, off)
  return i % 5 === 4
    ? {kind: 'packages', path: `pkgs/v1/pkg-${i}.tar`, data}
    : {kind: 'binaries', path: `release/v1.${i % 30}.0/bin/linux/amd64/tool-${i}`, data}
}

const mb = (t: Timed) => `${Math.round((t.rssKb ?? 0) / 1024)} MB`

const work = await makeTempDir('airlock-bench-count-')
process.stderr.write(`images: ${COUNT} (cached under ${cache})...\n`)
const t0 = performance.now()
const set = await countImageStorage(cache, COUNT)
process.stderr.write(`images ready in ${secs(performance.now() - t0)}\n`)
const src = await startRegistry({dataDir: set.dataDir})
const regA = await startRegistry()
const regB = await startRegistry()
const www = join(work, 'www')
const specs = Array.from({length: FILES}, (_, i) => fileSpec(i))
for (const f of specs) {
  await mkdir(join(www, f.path, '..'), {recursive: true})
  await writeFile(join(www, f.path), f.data)
}
const nginx = await startNginx({root: www})
try {
  const manifest = join(work, 'count.yaml')
  const lines = ['apiVersion: airlock/v1', 'kind: Manifest', 'metadata:', '  name: count', 'spec:', '  images:']
  for (const img of set.images) lines.push(`    - ref: ${src.host}/${img.repository}:${img.tag}`, '      platforms: [all]')
  for (const kind of ['binaries', 'packages'] as const) {
    lines.push(`  ${kind}:`)
    for (const f of specs.filter((s) => s.kind === kind)) {
      lines.push(`    - url: ${nginx.url}/${f.path}`, `      sha256: ${createHash('sha256').update(f.data).digest('hex')}`)
    }
  }
  await writeFile(manifest, `${lines.join('\n')}\n`)
  specs.length = 0

  const rows: string[][] = []
  const row = (job: string, a: Timed, refName: string, ref?: Timed) =>
    rows.push(ref ? [job, secs(a.ms), mb(a), refName, secs(ref.ms), mb(ref), `${(a.ms / ref.ms).toFixed(2)}x`] : [job, secs(a.ms), mb(a), '(not run)', '', '', ''])
  /** A reference run, unless BENCH_REFERENCE=0. */
  const reference = async (what: string, cmd: string, args: string[]): Promise<Timed | undefined> =>
    REFERENCE ? check(what, await timed(cmd, args, {rss: true})) : undefined

  // pull
  process.stderr.write('airlock pull...\n')
  const store = join(work, 'store')
  const pull = check('airlock pull', await timed(process.execPath, [cli, 'pull', manifest, '--store', store, '--quiet', '--concurrency', String(CONCURRENCY)], {rss: true}))
  const syncFile = join(work, 'sync.yaml')
  await writeFile(syncFile, `${src.host}:\n  tls-verify: false\n  images:\n${set.images.map((i) => `    ${i.repository}: ["${i.tag}"]\n`).join('')}`)
  process.stderr.write('skopeo sync + curl...\n')
  const skopeoDir = join(work, 'skopeo-dir')
  await mkdir(skopeoDir)
  const sync = await reference('skopeo sync', 'skopeo', ['sync', '--all', '--preserve-digests', '--src', 'yaml', '--dest', 'dir', syncFile, skopeoDir])
  const curlCfg = join(work, 'curl.cfg')
  const urls = (await readdir(www, {recursive: true, withFileTypes: true})).filter((e) => e.isFile())
  await writeFile(
    curlCfg,
    urls.map((e) => `url = "${nginx.url}/${join(e.parentPath ?? (e as unknown as {path: string}).path, e.name).slice(www.length + 1)}"\noutput = "/dev/null"\n`).join(''),
  )
  const curl = await reference('curl', 'curl', ['-sS', '-f', '--parallel', '--parallel-max', String(CONCURRENCY), '-K', curlCfg])
  row('pull', pull, 'skopeo sync + curl', sync && curl ? {ms: sync.ms + curl.ms, code: 0, rssKb: Math.max(sync.rssKb ?? 0, curl.rssKb ?? 0), stderr: ''} : undefined)

  // bundle
  process.stderr.write('airlock bundle...\n')
  const storeSize = await du(store)
  check('warm-up', await timed('sh', ['-c', `find ${store} -type f -exec cat {} + > /dev/null`]))
  const bundleDir = join(work, 'bundle')
  const bundle = check('airlock bundle', await timed(process.execPath, [cli, 'bundle', '--store', store, '--out', bundleDir, '--no-importer', '--quiet'], {rss: true}))
  const gnuDir = join(work, 'gnu')
  const gnu = await reference('GNU tar', 'sh', [
    '-c',
    [
      `mkdir -p ${gnuDir}`,
      `tar -czf ${gnuDir}/offline-files.tar.gz -C ${store} files`,
      `tar -czf ${gnuDir}/component-tools.tar.gz -C ${store} packages`,
      `tar -cf ${gnuDir}/offline-images.tar -C ${store}/images .`,
    ].join(' && '),
  ])
  row('bundle', bundle, 'GNU tar (-cf, -czf x2)', gnu)

  // import registry
  process.stderr.write('airlock import registry...\n')
  const ireg = check(
    'airlock import registry',
    await timed(process.execPath, [cli, 'import', 'registry', bundleDir, '--registry', regA.host, '--namespace', 'bench', '--concurrency', String(CONCURRENCY), '--quiet'], {rss: true}),
  )
  process.stderr.write('skopeo sync dir -> registry...\n')
  const syncUp = await reference('skopeo sync to a registry', 'skopeo', [
    'sync',
    '--all',
    '--preserve-digests',
    '--src',
    'dir',
    '--dest',
    'docker',
    '--dest-tls-verify=false',
    skopeoDir,
    `${regB.host}/bench`,
  ])
  row('import registry', ireg, 'skopeo sync dir -> registry', syncUp)

  // import nginx
  process.stderr.write('airlock import nginx...\n')
  const airRoot = join(work, 'root-airlock')
  const tarRoot = join(work, 'root-tar')
  await mkdir(tarRoot)
  const inginx = check('airlock import nginx', await timed(process.execPath, [cli, 'import', 'nginx', bundleDir, '--root', airRoot, '--quiet'], {rss: true}))
  const untar = await reference('tar -xzf', 'sh', [
    '-c',
    ['offline-files.tar.gz', 'component-tools.tar.gz'].map((a) => `tar -xzf ${join(bundleDir, a)} --strip-components=1 -C ${tarRoot}`).join(' && '),
  ])
  row('import nginx', inginx, 'tar -xzf x2', untar)

  const head = ['job', 'airlock', 'RSS', 'reference', 'time', 'RSS', 'airlock/ref']
  const widths = [17, 10, 9, 31, 10, 9, 12]
  const fmt = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : i === 3 ? `  ${c.padEnd(widths[i] - 2)}` : c.padStart(widths[i]))).join('')
  process.stdout.write(
    `count: ${COUNT} two-platform images and ${FILES} files; store ${(storeSize.bytes / MB).toFixed(0)} MB in ${storeSize.files} files; --concurrency ${CONCURRENCY}\n`,
  )
  process.stdout.write(`${fmt(head)}\n${rows.map(fmt).join('\n')}\n`)
  const worst = Math.max(pull.rssKb ?? 0, bundle.rssKb ?? 0, ireg.rssKb ?? 0, inginx.rssKb ?? 0)
  process.stdout.write(`airlock peak RSS ${Math.round(worst / 1024)} MB (target < 150 MB at 4,000 images: ${worst < 150 * 1024 ? 'met' : 'NOT met'})\n`)
} finally {
  await src.stop()
  await regA.stop()
  await regB.stop()
  await nginx.stop()
  await rm(work, {recursive: true, force: true})
}
