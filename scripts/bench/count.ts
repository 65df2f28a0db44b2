/**
 * Benchmark: the cost of the count, not the size. Many tiny multi-arch images
 * and many small files through `pull`, `bundle`, `import registry`,
 * `import nginx` and `import s3`, each against the usual tool doing the same
 * in the same run:
 *
 *   pull             skopeo sync --all (registry -> dir) + curl of every file
 *   bundle           GNU tar -cf of the image layout + tar -czf of files/ and packages/
 *   import registry  skopeo sync --all (that dir -> a fresh registry)
 *   import nginx     GNU tar -xzf of the two file archives
 *   import s3        tar -xzf of the two file archives, then rclone copy of
 *                    the files into a bucket (Ceph RGW on loopback)
 *
 * and, for bundle and import nginx, node-tar (tar's c and x) doing the same
 * in Node with nothing checked: the floor of the job in the language.
 *
 * Prints time and peak RSS of every run (GNU time), airlock's and the
 * reference's. Then the same jobs run again with one image and one file,
 * and a second table gives each job's fixed cost (that run's time) and its
 * cost per entry (an image or a file the job handles): the full run's time
 * less the one-entry run's, over the entries between; the reference's the
 * same way. The goals: the count set's of docs/performance.md (GOALS in
 * bench-lib.ts: peak RSS <= 150 MB at any count, pull >= 2x faster than
 * skopeo, bundle <= 2.5x tar, import registry >= 10x faster than skopeo),
 * printed on this run's counts; `goals` is where they are checked.
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
 * takes minutes per thousand images), BENCH_S3 (1; 0 leaves out import s3
 * and the Ceph cluster it needs). TMPDIR=/dev/shm runs every folder on
 * tmpfs: the disk's variance out, the cost in CPU left.
 */
import {createHash} from 'node:crypto'
import {mkdir, readdir, rm, stat, writeFile} from 'node:fs/promises'
import {homedir} from 'node:os'
import {join} from 'node:path'

import {startNginx} from '../../test/helpers/nginx.js'
import {startRegistry} from '../../test/helpers/registry.js'
import {countImageStorage} from '../../test/helpers/registry-storage.js'
import {startRgw} from '../../test/helpers/rgw.js'
import {makeTempDir} from '../../test/helpers/tmp.js'
import {
  check,
  goalLine,
  GOALS,
  MB,
  root,
  rssGoalLine,
  secs,
  skopeoSyncArgs,
  smallFile,
  type Timed,
  timed,
} from '../bench-lib.js'

const COUNT = Number(process.env.BENCH_COUNT ?? 1000)
const FILES = Number(process.env.BENCH_FILES ?? 1000)
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8)
const REFERENCE = process.env.BENCH_REFERENCE !== '0'
const S3 = process.env.BENCH_S3 !== '0'
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
const specs = Array.from({length: FILES}, (_, i) => smallFile(i))
for (const f of specs) {
  await mkdir(join(www, f.path, '..'), {recursive: true})
  await writeFile(join(www, f.path), f.data)
}
const nginx = await startNginx({root: www})
const rgw = S3 ? await startRgw() : undefined
/** One run of the jobs over a manifest, airlock's and the reference's, in folders named with `tag`. */
interface Jobs {
  pull: Timed
  pullRef?: Timed
  bundle: Timed
  bundleRef?: Timed
  bundleNode?: Timed
  ireg: Timed
  iregRef?: Timed
  inginx: Timed
  inginxRef?: Timed
  inginxNode?: Timed
  is3?: Timed
  is3Ref?: Timed
  storeSize: {bytes: number; files: number}
}

/** node-tar (a dependency already) writing the bundle's three archives, as `bundle` does but checking nothing. */
const NODE_TAR_CREATE = `
import {c} from 'tar'
const [store, out] = process.argv.slice(1)
await import('node:fs').then((fs) => fs.mkdirSync(out, {recursive: true}))
await c({gzip: true, file: out + '/offline-files.tar.gz', cwd: store}, ['files'])
await c({gzip: true, file: out + '/component-tools.tar.gz', cwd: store}, ['packages'])
await c({file: out + '/offline-images.tar', cwd: store + '/images'}, ['.'])
`

/** node-tar unpacking the two file archives, top folder stripped, as `import nginx` does but checking and flushing nothing. */
const NODE_TAR_EXTRACT = `
import {x} from 'tar'
const [bundle, root] = process.argv.slice(1)
await import('node:fs').then((fs) => fs.mkdirSync(root, {recursive: true}))
for (const a of ['offline-files.tar.gz', 'component-tools.tar.gz']) await x({file: bundle + '/' + a, cwd: root, strip: 1})
`

/** GNU tar unpacking the bundle's two file archives into `to`, top folder stripped: one command each. */
const untarFiles = (bundleDir: string, to: string): string[] =>
  ['offline-files.tar.gz', 'component-tools.tar.gz'].map(
    (a) => `tar -xzf ${join(bundleDir, a)} --strip-components=1 -C ${to}`,
  )

/** A reference run, unless BENCH_REFERENCE=0. */
const reference = async (what: string, cmd: string, args: string[]): Promise<Timed | undefined> =>
  REFERENCE ? check(what, await timed(cmd, args, {rss: true})) : undefined

async function runJobs(
  tag: string,
  manifest: string,
  images: {repository: string; tag: string}[],
  urls: string[],
): Promise<Jobs> {
  const say = (what: string) => process.stderr.write(`[${tag}] ${what}...\n`)
  const dir = join(work, tag)
  await mkdir(dir)
  // pull
  say('airlock pull')
  const store = join(dir, 'store')
  const pull = check(
    'airlock pull',
    await timed(
      process.execPath,
      [cli, 'pull', manifest, '--store', store, '--quiet', '--concurrency', String(CONCURRENCY)],
      {rss: true},
    ),
  )
  const syncFile = join(dir, 'sync.yaml')
  await writeFile(
    syncFile,
    `${src.host}:\n  tls-verify: false\n  images:\n${images.map((i) => `    ${i.repository}: ["${i.tag}"]\n`).join('')}`,
  )
  say('skopeo sync + curl')
  const skopeoDir = join(dir, 'skopeo-dir')
  await mkdir(skopeoDir)
  const sync = await reference('skopeo sync', 'skopeo', skopeoSyncArgs({yaml: syncFile}, {dir: skopeoDir}))
  const curlCfg = join(dir, 'curl.cfg')
  await writeFile(curlCfg, urls.map((u) => `url = "${u}"\noutput = "/dev/null"\n`).join(''))
  const curl = await reference('curl', 'curl', [
    '-sS',
    '-f',
    '--parallel',
    '--parallel-max',
    String(CONCURRENCY),
    '-K',
    curlCfg,
  ])
  const pullRef =
    sync && curl
      ? {ms: sync.ms + curl.ms, code: 0, rssKb: Math.max(sync.rssKb ?? 0, curl.rssKb ?? 0), stderr: ''}
      : undefined

  // bundle
  say('airlock bundle')
  const storeSize = await du(store)
  check('warm-up', await timed('sh', ['-c', `find ${store} -type f -exec cat {} + > /dev/null`]))
  const bundleDir = join(dir, 'bundle')
  const bundle = check(
    'airlock bundle',
    await timed(process.execPath, [cli, 'bundle', '--store', store, '--out', bundleDir, '--no-importer', '--quiet'], {
      rss: true,
    }),
  )
  const gnuDir = join(dir, 'gnu')
  const bundleRef = await reference('GNU tar', 'sh', [
    '-c',
    [
      `mkdir -p ${gnuDir}`,
      `tar -czf ${gnuDir}/offline-files.tar.gz -C ${store} files`,
      `tar -czf ${gnuDir}/component-tools.tar.gz -C ${store} packages`,
      `tar -cf ${gnuDir}/offline-images.tar -C ${store}/images .`,
    ].join(' && '),
  ])
  // The same archives written by node-tar: what the job costs in Node with nothing checked.
  const bundleNode = await reference('node-tar create', process.execPath, [
    '--input-type=module',
    '-e',
    NODE_TAR_CREATE,
    store,
    join(dir, 'node-tar'),
  ])

  // import registry
  say('airlock import registry')
  const ireg = check(
    'airlock import registry',
    await timed(
      process.execPath,
      [
        cli,
        'import',
        'registry',
        bundleDir,
        '--registry',
        regA.host,
        '--namespace',
        tag,
        '--concurrency',
        String(CONCURRENCY),
        '--quiet',
      ],
      {rss: true},
    ),
  )
  say('skopeo sync dir -> registry')
  const iregRef = await reference(
    'skopeo sync to a registry',
    'skopeo',
    skopeoSyncArgs({dir: skopeoDir}, {registry: `${regB.host}/${tag}`}),
  )

  // import nginx
  say('airlock import nginx')
  const tarRoot = join(dir, 'root-tar')
  await mkdir(tarRoot)
  const inginx = check(
    'airlock import nginx',
    await timed(process.execPath, [cli, 'import', 'nginx', bundleDir, '--root', join(dir, 'root-airlock'), '--quiet'], {
      rss: true,
    }),
  )
  const inginxRef = await reference('tar -xzf', 'sh', ['-c', untarFiles(bundleDir, tarRoot).join(' && ')])
  const inginxNode = await reference('node-tar extract', process.execPath, [
    '--input-type=module',
    '-e',
    NODE_TAR_EXTRACT,
    bundleDir,
    join(dir, 'root-node-tar'),
  ])

  // import s3: into a bucket of its own each, airlock's and the reference's
  let is3: Timed | undefined
  let is3Ref: Timed | undefined
  if (rgw) {
    say('airlock import s3')
    const keys = ['--access-key', rgw.accessKey, '--secret-key', rgw.secretKey]
    is3 = check(
      'airlock import s3',
      await timed(
        process.execPath,
        [
          cli,
          'import',
          's3',
          bundleDir,
          '--endpoint',
          rgw.endpoint,
          '--bucket',
          `count-${tag}`,
          '--create-bucket',
          ...keys,
          '--concurrency',
          String(CONCURRENCY),
          '--quiet',
        ],
        {rss: true},
      ),
    )
    say('tar -xzf + rclone copy')
    const unpacked = join(dir, 'root-rclone')
    // rclone's S3 remote given on the command line (no config file); it makes the bucket itself.
    const remote = `:s3,provider=Ceph,endpoint='${rgw.endpoint}',access_key_id=${rgw.accessKey},secret_access_key=${rgw.secretKey}:count-${tag}-rclone`
    is3Ref = await reference('tar -xzf + rclone copy', 'sh', [
      '-c',
      [
        `mkdir -p ${unpacked}`,
        ...untarFiles(bundleDir, unpacked),
        // A CA bundle set for other endpoints makes rclone's S3 client fail at start; the endpoint here is plain HTTP.
        `env -u AWS_CA_BUNDLE rclone copy ${unpacked} "${remote}" --transfers ${CONCURRENCY} --checkers ${CONCURRENCY} --config /dev/null -q`,
      ].join(' && '),
    ])
  }
  return {
    pull,
    pullRef,
    bundle,
    bundleRef,
    bundleNode,
    ireg,
    iregRef,
    inginx,
    inginxRef,
    inginxNode,
    is3,
    is3Ref,
    storeSize,
  }
}

try {
  const manifest = join(work, 'count.yaml')
  const one = join(work, 'one.yaml')
  const head = ['apiVersion: airlock/v1', 'kind: Manifest', 'metadata:', '  name: count', 'spec:', '  images:']
  const imageLines = (imgs: typeof set.images) =>
    imgs.flatMap((img) => [`    - ref: ${src.host}/${img.repository}:${img.tag}`, '      platforms: [all]'])
  const fileLines = (list: typeof specs, kind: 'binaries' | 'packages') => [
    `  ${kind}:`,
    ...list
      .filter((s) => s.kind === kind)
      .flatMap((f) => [
        `    - url: ${nginx.url}/${f.path}`,
        `      sha256: ${createHash('sha256').update(f.data).digest('hex')}`,
      ]),
  ]
  await writeFile(
    manifest,
    `${[...head, ...imageLines(set.images), ...fileLines(specs, 'binaries'), ...fileLines(specs, 'packages')].join('\n')}\n`,
  )
  // One image and one file: the same jobs' fixed cost, to take from the full run's time for the cost of an entry.
  await writeFile(
    one,
    `${[...head, ...imageLines(set.images.slice(0, 1)), ...fileLines(specs.slice(0, 1), 'binaries')].join('\n')}\n`,
  )
  const urls = specs.map((f) => `${nginx.url}/${f.path}`)
  const oneUrl = urls.slice(0, 1)
  specs.length = 0

  const all = await runJobs('all', manifest, set.images, urls)
  const fixed = await runJobs('one', one, set.images.slice(0, 1), oneUrl)

  const rows: string[][] = []
  const row = (job: string, a: Timed, refName: string, ref?: Timed) =>
    rows.push(
      ref
        ? [job, secs(a.ms), mb(a), refName, secs(ref.ms), mb(ref), `${(a.ms / ref.ms).toFixed(2)}x`]
        : [job, secs(a.ms), mb(a), '(not run)', '', '', ''],
    )
  row('pull', all.pull, 'skopeo sync + curl', all.pullRef)
  row('bundle', all.bundle, 'GNU tar (-cf, -czf x2)', all.bundleRef)
  row('bundle', all.bundle, 'node-tar c (same archives)', all.bundleNode)
  row('import registry', all.ireg, 'skopeo sync dir -> registry', all.iregRef)
  row('import nginx', all.inginx, 'tar -xzf x2', all.inginxRef)
  row('import nginx', all.inginx, 'node-tar x (same archives)', all.inginxNode)
  if (all.is3) row('import s3', all.is3, 'tar -xzf x2 + rclone copy', all.is3Ref)

  const headers = ['job', 'airlock', 'RSS', 'reference', 'time', 'RSS', 'airlock/ref']
  const widths = [17, 10, 9, 31, 10, 9, 12]
  const fmt = (r: string[], w = widths) =>
    r
      .map((c, i) =>
        i === 0 ? c.padEnd(w[i]) : i === 3 && w === widths ? `  ${c.padEnd(w[i] - 2)}` : c.padStart(w[i]),
      )
      .join('')
  process.stdout.write(
    `count: ${COUNT} two-platform images and ${FILES} files; store ${(all.storeSize.bytes / MB).toFixed(0)} MB in ${all.storeSize.files} files; --concurrency ${CONCURRENCY}\n`,
  )
  process.stdout.write(`${fmt(headers)}\n${rows.map((r) => fmt(r)).join('\n')}\n`)
  const worst = Math.max(
    all.pull.rssKb ?? 0,
    all.bundle.rssKb ?? 0,
    all.ireg.rssKb ?? 0,
    all.inginx.rssKb ?? 0,
    all.is3?.rssKb ?? 0,
  )
  process.stdout.write(`airlock ${rssGoalLine(worst)}, at any count\n`)
  // The count set's goals (GOALS in bench-lib.ts), on this run's counts; the references' differ a little from `goals`' (no sync -f).
  const g = GOALS.count
  const goals = [
    all.pullRef &&
      goalLine('pull: skopeo sync + curl / airlock', all.pullRef.ms / all.pull.ms, g.pullFasterThanSkopeo, 'min'),
    all.bundleRef && goalLine('bundle: airlock / GNU tar', all.bundle.ms / all.bundleRef.ms, g.bundleMaxVsTar, 'max'),
    all.iregRef &&
      goalLine(
        'import registry: skopeo sync / airlock',
        all.iregRef.ms / all.ireg.ms,
        g.importRegistryFasterThanSkopeo,
        'min',
      ),
  ].filter(Boolean)
  if (goals.length > 0) process.stdout.write(`${goals.join('\n')}\n`)

  // The cost of an entry (an image or a file the job handles): the full run less the one-entry run, over the entries between.
  const perEntry = (n: number, a: Timed, b: Timed) => (a.ms - b.ms) / (n - 1)
  const ms = (x: number) => `${x.toFixed(3)} ms`
  const costWidths = [17, 12, 15, 15, 12]
  const costRows: string[][] = []
  /** A job's row: airlock's full and one-entry runs (`a`, `a1`), and the reference tool's (`r`, `r1`) when it ran. */
  const costRow = (job: string, entries: number, [a, a1]: [Timed, Timed], [r, r1]: [Timed?, Timed?] = []) => {
    const mine = perEntry(entries, a, a1)
    const theirs = r && r1 ? perEntry(entries, r, r1) : undefined
    costRows.push([
      job,
      secs(a1.ms),
      ms(mine),
      theirs === undefined ? '(not run)' : ms(theirs),
      theirs === undefined ? '' : `${(mine / theirs).toFixed(2)}x`,
    ])
  }
  // pull and bundle handle images and files (counted as one entry each, the one-entry run has one of each); import registry the images, import nginx the files.
  costRow('pull', COUNT + FILES - 1, [all.pull, fixed.pull], [all.pullRef, fixed.pullRef])
  costRow('bundle', COUNT + FILES - 1, [all.bundle, fixed.bundle], [all.bundleRef, fixed.bundleRef])
  costRow('  vs node-tar', COUNT + FILES - 1, [all.bundle, fixed.bundle], [all.bundleNode, fixed.bundleNode])
  costRow('import registry', COUNT, [all.ireg, fixed.ireg], [all.iregRef, fixed.iregRef])
  costRow('import nginx', FILES, [all.inginx, fixed.inginx], [all.inginxRef, fixed.inginxRef])
  costRow('  vs node-tar', FILES, [all.inginx, fixed.inginx], [all.inginxNode, fixed.inginxNode])
  if (all.is3 && fixed.is3) costRow('import s3', FILES, [all.is3, fixed.is3], [all.is3Ref, fixed.is3Ref])
  process.stdout.write(`\nper entry: (time of the full run - time with one image and one file) / entries between\n`)
  process.stdout.write(
    `${fmt(['job', 'fixed', 'airlock/entry', 'ref/entry', 'airlock/ref'], costWidths)}\n${costRows.map((r) => fmt(r, costWidths)).join('\n')}\n`,
  )
} finally {
  await src.stop()
  await regA.stop()
  await regB.stop()
  await nginx.stop()
  await rgw?.stop()
  await rm(work, {recursive: true, force: true})
}
