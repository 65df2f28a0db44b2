/**
 * Benchmark: `airlock import registry` of a bundle holding at least 500 MB of
 * images, compared in the same run with a loop of
 * `skopeo copy --all oci-archive:offline-images.tar:<ref> docker://...`, each
 * into its own fresh local registry (the same kind: the distribution
 * registry, plain HTTP on loopback). Prints both times, the ratio and
 * airlock's peak RSS, then checks every airlock target's digest with skopeo.
 * The goal printed is the scale set's (GOALS in bench-lib.ts), whose
 * reference is one `skopeo sync` rather than this loop (see `goals`).
 *
 *   node --import tsx scripts/bench/import-registry.ts
 *
 * The bundle looks like a cluster's offline images: 24 multi-arch images
 * (two own layers per platform, 3 to 9 MB) on a shared 32 MB base, about
 * 600 MB in all. skopeo unpacks the whole oci-archive for every image it
 * copies, so its time grows with the number of images; airlock reads the
 * archive once, in place.
 *
 * Knobs (env): BENCH_IMAGES (24 multi-arch images), BENCH_LAYER_MB (6: mean
 * own layer size), BENCH_CONCURRENCY (8).
 */
import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {stat} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {startRegistry} from '../../test/helpers/registry.js'
import {makeRegistryBundle} from '../../test/helpers/registry-bundle-fixture.js'
import {makeTempDir} from '../../test/helpers/tmp.js'
import {check, goalLine, GOALS, MB, root, rssGoalLine, secs, timed} from '../bench-lib.js'

const IMAGES = Number(process.env.BENCH_IMAGES ?? 24)
const LAYER_MB = Number(process.env.BENCH_LAYER_MB ?? 6)
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8)
const exec = promisify(execFile)

const work = await makeTempDir('airlock-bench-ireg-')
process.stderr.write(`writing a bundle of ${IMAGES} multi-arch images...\n`)
const specs = Array.from({length: IMAGES}, (_, i) => ({
  ref:
    i % 3 === 0
      ? `docker.io/library/app${i}:1.0`
      : i % 3 === 1
        ? `registry.k8s.io/comp${i}:v1.29.0`
        : `quay.io/team/tool${i}:2`,
  platforms: ['linux/amd64', 'linux/arm64'],
  layers: 2,
  // Mixed sizes around the mean, like real images: a few large, many middling.
  layerSize: Math.round(LAYER_MB * MB * (0.5 + (i % 3) * 0.5)),
}))
const bundle = await makeRegistryBundle(specs, {dir: join(work, 'bundle'), sharedLayers: [24 * MB, 8 * MB]})
const archiveBytes = (await stat(join(bundle.dir, 'offline-images.tar'))).size
process.stderr.write(`bundle: ${(archiveBytes / MB).toFixed(0)} MB of images\n`)
if (archiveBytes < 500 * MB) process.stderr.write('warning: less than 500 MB; raise BENCH_IMAGES or BENCH_LAYER_MB\n')

const regA = await startRegistry()
const regB = await startRegistry()
try {
  process.stderr.write('airlock import registry...\n')
  const airlock = await timed(
    process.execPath,
    [
      join(root, 'bin/run.js'),
      'import',
      'registry',
      bundle.dir,
      '--registry',
      regA.host,
      '--namespace',
      'bench',
      '--concurrency',
      String(CONCURRENCY),
      '--quiet',
    ],
    {rss: true},
  )
  check('airlock import registry', airlock)

  process.stderr.write('skopeo copy --all loop...\n')
  const t0 = performance.now()
  for (const img of bundle.images) {
    const path = img.ref.replace(/^[^/]+\//, '')
    const t = await timed('skopeo', [
      'copy',
      '--all',
      '--quiet',
      '--dest-tls-verify=false',
      `oci-archive:${join(bundle.dir, 'offline-images.tar')}:${img.ref}`,
      `docker://${regB.host}/bench/${path}`,
    ])
    check(`skopeo copy ${img.ref}`, t)
  }
  const skopeoMs = performance.now() - t0

  // Both ended complete: every airlock target has the bundle's digest.
  for (const img of bundle.images) {
    const path = img.ref.replace(/^[^/]+\//, '')
    const {stdout} = await exec(
      'skopeo',
      ['inspect', '--raw', '--tls-verify=false', `docker://${regA.host}/bench/${path}`],
      {encoding: 'buffer', maxBuffer: 1 << 24},
    )
    const d = `sha256:${createHash('sha256').update(stdout).digest('hex')}`
    if (d !== img.digest) {
      process.stderr.write(`${img.ref}: airlock pushed ${d}, bundle.json says ${img.digest}\n`)
      process.exit(1)
    }
  }

  const rows = [
    ['airlock import registry', secs(airlock.ms), '1.00x', `${((airlock.rssKb ?? 0) / 1024).toFixed(0)} MB`],
    ['skopeo copy --all loop', secs(skopeoMs), `${(skopeoMs / airlock.ms).toFixed(2)}x`, ''],
  ]
  process.stdout.write(
    `import registry: ${IMAGES} multi-arch images, ${(archiveBytes / MB).toFixed(0)} MB archive, --concurrency ${CONCURRENCY}\n` +
      `${'tool'.padEnd(26)}${'time'.padStart(10)}${'vs airlock'.padStart(12)}${'peak RSS'.padStart(10)}\n` +
      rows.map((r) => `${r[0].padEnd(26)}${r[1].padStart(10)}${r[2].padStart(12)}${r[3].padStart(10)}`).join('\n') +
      `\n${goalLine('skopeo loop / airlock', skopeoMs / airlock.ms, GOALS.scale.importRegistryFasterThanSkopeo, 'min')}; ${rssGoalLine(airlock.rssKb)}\n`,
  )
} finally {
  await regA.stop()
  await regB.stop()
}
