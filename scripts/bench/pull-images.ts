/**
 * Benchmark: `airlock pull` of images against a registry behind nginx with a
 * per-connection rate limit (a WAN or CDN on loopback), compared in the same
 * run with a loop of `skopeo copy --all` into one OCI layout and with every
 * unique blob fetched by curl at the same parallelism (the link's limit).
 * Then airlock's peak RSS with blobs 100x larger. Prints the scale set's pull
 * goals (GOALS in bench-lib.ts) beside these references, which are not the
 * goals' own (those are unthrottled and flushed: see `goals`).
 *
 *   node --import tsx scripts/bench/pull-images.ts
 *
 * Knobs (env): BENCH_IMAGES (16), BENCH_RATE (nginx limit_rate, 4m),
 * BENCH_CONCURRENCY (8), BENCH_BIG_LAYER (bytes of the large-blob layer, 400 MB: 100x the median seeded layer).
 */
import {mkdir, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {pushImage} from '../../test/helpers/images.js'
import {startNginx} from '../../test/helpers/nginx.js'
import {startRegistry} from '../../test/helpers/registry.js'
import {makeTempDir} from '../../test/helpers/tmp.js'
import {check, goalLine, GOALS, MB, root, rssGoalLine, secs, seedBenchImages, timed} from '../bench-lib.js'

const IMAGES = Number(process.env.BENCH_IMAGES ?? 16)
const RATE = process.env.BENCH_RATE ?? '4m'
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8)
const BIG = Number(process.env.BENCH_BIG_LAYER ?? 400 * 1024 * 1024)

const work = await makeTempDir('airlock-bench-pull-')
const reg = await startRegistry()
const nginx = await startNginx({proxyTo: reg.url, rateLimit: RATE})
try {
  // Seed: multi-arch images sharing base layers, as real ones do (distro base, runtime), plus their own layers.
  process.stderr.write(`seeding ${IMAGES} multi-arch images...\n`)
  const images = await seedBenchImages(reg, IMAGES)
  const unique = new Map<string, number>()
  for (const img of images) for (const b of img.blobs) unique.set(b.digest, b.size)
  const uniqueBytes = [...unique.values()].reduce((a, b) => a + b, 0)
  const refs = images.map((img) => `${nginx.host}/${img.repository}:${img.tag}`)

  // airlock
  const manifest = join(work, 'airlock.yaml')
  await writeFile(
    manifest,
    `apiVersion: airlock/v1\nkind: Manifest\nmetadata:\n  name: bench\nspec:\n  images:\n${refs.map((r) => `    - ref: ${r}\n      platforms: [all]\n`).join('')}`,
  )
  const store = join(work, 'store')
  const airlock = await timed(
    process.execPath,
    [join(root, 'bin/run.js'), 'pull', manifest, '--store', store, '--quiet', '--concurrency', String(CONCURRENCY)],
    {rss: true},
  )
  check('airlock pull', airlock)

  // skopeo: one image after the other, every platform, into one layout.
  const layout = join(work, 'skopeo-layout')
  await mkdir(layout, {recursive: true})
  const t0 = performance.now()
  for (const r of refs) {
    const t = await timed('skopeo', [
      'copy',
      '--all',
      '--quiet',
      '--src-tls-verify=false',
      `docker://${r}`,
      `oci:${layout}:${r}`,
    ])
    check(`skopeo copy ${r}`, t)
  }
  const skopeoMs = performance.now() - t0

  // curl: every unique blob, CONCURRENCY transfers at once.
  const curlCfg = join(work, 'curl.cfg')
  const firstRepo = new Map<string, string>()
  for (const img of images)
    for (const b of img.blobs) if (!firstRepo.has(b.digest)) firstRepo.set(b.digest, img.repository)
  await writeFile(
    curlCfg,
    [...firstRepo]
      .map(([d, repo]) => `url = "http://${nginx.host}/v2/${repo}/blobs/${d}"\noutput = "/dev/null"\n`)
      .join(''),
  )
  const curl = await timed('curl', [
    '-sS',
    '-f',
    '-L',
    '--parallel',
    '--parallel-immediate',
    '--parallel-max',
    String(CONCURRENCY),
    '-K',
    curlCfg,
  ])
  check('curl', curl)

  // Peak RSS with blobs 100x larger (no rate limit: memory, not time, is measured here).
  await rm(store, {recursive: true, force: true})
  const big = await pushImage(reg, {repository: 'bench/big', tag: '1', layers: 1, layerSize: BIG})
  const bigManifest = join(work, 'big.yaml')
  await writeFile(
    bigManifest,
    `apiVersion: airlock/v1\nkind: Manifest\nmetadata:\n  name: bench-big\nspec:\n  images:\n    - ${reg.host}/${big.repository}:${big.tag}\n`,
  )
  const bigRun = await timed(
    process.execPath,
    [join(root, 'bin/run.js'), 'pull', bigManifest, '--store', join(work, 'store-big'), '--quiet'],
    {rss: true},
  )
  check('airlock pull (large blobs)', bigRun)

  const rows = [
    ['airlock pull', secs(airlock.ms), '1.00', `${Math.round((airlock.rssKb ?? 0) / 1024)} MB`],
    ['skopeo copy --all loop', secs(skopeoMs), (skopeoMs / airlock.ms).toFixed(2), ''],
    [`curl, ${CONCURRENCY} parallel`, secs(curl.ms), (curl.ms / airlock.ms).toFixed(2), ''],
  ]
  process.stdout.write(
    `pull-images: ${IMAGES} multi-arch images, ${unique.size} unique blobs, ${(uniqueBytes / MB).toFixed(1)} MB, nginx limit_rate ${RATE}/connection, --concurrency ${CONCURRENCY}\n`,
  )
  process.stdout.write(
    `${'run'.padEnd(26)}${'time'.padStart(10)}${'time/airlock'.padStart(14)}${'peak RSS'.padStart(10)}\n`,
  )
  for (const r of rows)
    process.stdout.write(`${r[0].padEnd(26)}${r[1].padStart(10)}${r[2].padStart(14)}${r[3].padStart(10)}\n`)
  process.stdout.write(
    `${goalLine('skopeo loop / airlock', skopeoMs / airlock.ms, GOALS.scale.pullFasterThanSkopeo, 'min')}; ${goalLine('airlock / curl', airlock.ms / curl.ms, GOALS.scale.pullMaxVsCurl, 'max')}; ${rssGoalLine(airlock.rssKb)}\n`,
  )
  process.stdout.write(
    `large blobs: one ${(BIG / MB).toFixed(0)} MB layer in ${secs(bigRun.ms)}, airlock ${rssGoalLine(bigRun.rssKb)}\n`,
  )
} finally {
  await nginx.stop()
  await reg.stop()
}
