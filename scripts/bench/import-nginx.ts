/**
 * Benchmark: `airlock import nginx` of a bundle against GNU
 * `tar -xzf ARCHIVE --strip-components=1 -C ROOT` of the same two archives,
 * same run, each into a fresh empty root. airlock does more: it verifies
 * the archives it imports (SHA256SUMS and every entry against bundle.json), hashes
 * every file as it is written, and flushes them to disk (one syncfs) before it
 * renames them in; tar does none of that. Goal: the scale set's (GOALS in
 * bench-lib.ts), whose reference flushes with `sync -f` (see `goals`). Also times a re-run
 * onto the filled root (everything skipped) and prints airlock's peak RSS.
 *
 *   node --import tsx scripts/bench/import-nginx.ts
 *
 * The bundle also carries BENCH_IMAGE_MB of images (default 400), which import
 * nginx does not import and so does not read.
 *
 * Knobs (env): BENCH_FILES (40 files), BENCH_FILE_MB (8: mean file size), BENCH_IMAGE_MB (400), BENCH_RUNS (3, median kept).
 */
import {mkdir, rm} from 'node:fs/promises'
import {join} from 'node:path'

import {writeBundle} from '../../src/lib/bundle/write/bundle.js'
import {fileData} from '../../test/helpers/bundle-fixture.js'
import {makeStoreFixture, type StoreFileSpec, type StoreImageSpec} from '../../test/helpers/store-fixture.js'
import {makeTempDir} from '../../test/helpers/tmp.js'
import {check, goalLine, GOALS, MB, rssGoalLine, secs, type Timed, timed} from '../bench-lib.js'

const FILES = Number(process.env.BENCH_FILES ?? 40)
const FILE_MB = Number(process.env.BENCH_FILE_MB ?? 8)
const RUNS = Number(process.env.BENCH_RUNS ?? 3)
const IMAGE_MB = Number(process.env.BENCH_IMAGE_MB ?? 400)

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const work = await makeTempDir('bench-import-nginx-')
// Sizes spread from small to twice the mean, like a kubespray offline-files set; a few packages too.
const files: StoreFileSpec[] = Array.from({length: FILES}, (_, i) => ({
  path: `dl.example/release/v1.29.${i}/bin/linux/amd64/tool-${i}`,
  data: fileData(Math.round((((i % 8) + 0.5) / 4) * FILE_MB * MB), i),
  executable: i % 2 === 0,
  kind: i % 10 === 9 ? ('package' as const) : ('binary' as const),
}))
const total = files.reduce((n, f) => n + f.data!.length, 0)
// Images too, as a real bundle has: import nginx does not import them, so it need not read them.
const images: StoreImageSpec[] =
  IMAGE_MB <= 0
    ? []
    : Array.from({length: 8}, (_, i) => ({
        ref: `registry.example/app-${i}:1.0`,
        layers: 4,
        layerSize: Math.round((IMAGE_MB * MB) / 32),
      }))
process.stdout.write(
  `bundle: ${files.length} files, ${(total / MB).toFixed(0)} MB; ${images.length} images, ${IMAGE_MB} MB (building it...)\n`,
)
const store = await makeStoreFixture({root: join(work, 'store'), images, files})
files.length = 0 // let the fixture's buffers go
const bundle = join(work, 'bundle')
await writeBundle({store: store.root, out: bundle})
await rm(store.root, {recursive: true, force: true})

const tarMs: number[] = []
const airlockMs: number[] = []
let rss = 0
let rerun: Timed | undefined
for (let run = 0; run < RUNS; run++) {
  const tarRoot = join(work, `tar-${run}`)
  const airRoot = join(work, `airlock-${run}`)
  await mkdir(tarRoot)
  const t0 = performance.now()
  for (const archive of ['offline-files.tar.gz', 'component-tools.tar.gz']) {
    check('tar', await timed('tar', ['-xzf', join(bundle, archive), '--strip-components=1', '-C', tarRoot]))
  }
  tarMs.push(performance.now() - t0)
  const a = check(
    'airlock',
    await timed(process.execPath, ['bin/run.js', 'import', 'nginx', bundle, '--root', airRoot, '--quiet'], {rss: true}),
  )
  airlockMs.push(a.ms)
  rss = Math.max(rss, a.rssKb ?? 0)
  if (run === RUNS - 1)
    rerun = check(
      'airlock re-run',
      await timed(process.execPath, ['bin/run.js', 'import', 'nginx', bundle, '--root', airRoot, '--quiet']),
    )
  await rm(tarRoot, {recursive: true, force: true})
  if (run < RUNS - 1) await rm(airRoot, {recursive: true, force: true})
}

const tar = median(tarMs)
const air = median(airlockMs)
const rows = [
  ['tool', 'time (median)', 'ratio'],
  ['tar -xzf --strip-components=1', secs(tar), '1.00x'],
  ['airlock import nginx', secs(air), `${(air / tar).toFixed(2)}x`],
  ['airlock import nginx (re-run, all skipped)', secs(rerun!.ms), `${(rerun!.ms / tar).toFixed(2)}x`],
]
for (const r of rows) process.stdout.write(`${r[0].padEnd(44)} ${r[1].padStart(14)} ${r[2].padStart(7)}\n`)
process.stdout.write(
  `airlock ${rssGoalLine(rss)}; ${goalLine('airlock / tar', air / tar, GOALS.scale.importNginxMaxVsTar, 'max')}\n`,
)
await rm(work, {recursive: true, force: true})
