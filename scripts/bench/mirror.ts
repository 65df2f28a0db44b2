/**
 * Benchmark: `airlock mirror` of the registry benchmarks' image set (the one
 * pull-images seeds: multi-arch images sharing base layers) from a source
 * registry behind nginx with a per-connection rate limit (a WAN on
 * loopback), compared in the same run with `skopeo sync --all
 * --preserve-digests` of the same repositories. Each tool writes into its
 * own fresh local registry of the same kind (the distribution registry,
 * plain HTTP on loopback). Prints both times, the ratio and airlock's peak
 * RSS, then checks every airlock target's digest with skopeo.
 *
 *   node --import tsx scripts/bench/mirror.ts
 *
 * Knobs (env): BENCH_IMAGES (16), BENCH_RATE (nginx limit_rate, 4m),
 * BENCH_CONCURRENCY (8).
 */
import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {startNginx} from '../../test/helpers/nginx.js'
import {startRegistry} from '../../test/helpers/registry.js'
import {makeTempDir} from '../../test/helpers/tmp.js'
import {check, MB, root, rssGoalLine, secs, seedBenchImages, skopeoSyncArgs, timed} from '../bench-lib.js'

const IMAGES = Number(process.env.BENCH_IMAGES ?? 16)
const RATE = process.env.BENCH_RATE ?? '4m'
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8)
const exec = promisify(execFile)

const work = await makeTempDir('airlock-bench-mirror-')
const source = await startRegistry()
const nginx = await startNginx({proxyTo: source.url, rateLimit: RATE})
const regA = await startRegistry()
const regB = await startRegistry()
try {
  process.stderr.write(`seeding ${IMAGES} multi-arch images...\n`)
  const images = await seedBenchImages(source, IMAGES)
  const unique = new Map<string, number>()
  for (const img of images) for (const b of img.blobs) unique.set(b.digest, b.size)
  const uniqueBytes = [...unique.values()].reduce((a, b) => a + b, 0)

  const manifest = join(work, 'mirror.yaml')
  await writeFile(
    manifest,
    `apiVersion: airlock/v1\nkind: Manifest\nmetadata:\n  name: bench\nspec:\n  images:\n${images.map((i) => `    - ref: ${nginx.host}/${i.repository}:${i.tag}\n      platforms: [all]\n`).join('')}`,
  )
  process.stderr.write('airlock mirror...\n')
  const airlock = await timed(
    process.execPath,
    [
      join(root, 'bin/run.js'),
      'mirror',
      manifest,
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
  check('airlock mirror', airlock)

  // skopeo sync of the same repositories and tags, every platform, digests kept.
  const syncFile = join(work, 'sync.yaml')
  await writeFile(
    syncFile,
    `${nginx.host}:\n  tls-verify: false\n  images:\n${images.map((i) => `    ${i.repository}: ["${i.tag}"]\n`).join('')}`,
  )
  process.stderr.write('skopeo sync...\n')
  const skopeo = await timed('skopeo', skopeoSyncArgs({yaml: syncFile}, {registry: `${regB.host}/bench`}))
  check('skopeo sync', skopeo)

  // Both ended complete: every target has the source's digest (skopeo sync names a target by the source's last path component).
  for (const img of images) {
    for (const [ref, tool] of [
      [`${regA.host}/bench/${img.repository}:${img.tag}`, 'airlock'],
      [`${regB.host}/bench/${img.repository.split('/').pop()}:${img.tag}`, 'skopeo'],
    ] as const) {
      const {stdout} = await exec('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`], {
        encoding: 'buffer',
        maxBuffer: 1 << 24,
      })
      const d = `sha256:${createHash('sha256').update(stdout).digest('hex')}`
      if (d !== img.digest) {
        process.stderr.write(`${tool}: ${ref} is ${d}, ${img.digest} in the source\n`)
        process.exit(1)
      }
    }
  }

  const ratio = skopeo.ms / airlock.ms
  const rows = [
    ['airlock mirror', secs(airlock.ms), '1.00x', `${((airlock.rssKb ?? 0) / 1024).toFixed(0)} MB`],
    ['skopeo sync --all', secs(skopeo.ms), `${ratio.toFixed(2)}x`, ''],
  ]
  process.stdout.write(
    `mirror: ${IMAGES} multi-arch images, ${unique.size} unique blobs, ${(uniqueBytes / MB).toFixed(1)} MB, source behind nginx limit_rate ${RATE}/connection, --concurrency ${CONCURRENCY}\n` +
      `${'tool'.padEnd(26)}${'time'.padStart(10)}${'vs airlock'.padStart(12)}${'peak RSS'.padStart(10)}\n` +
      rows.map((r) => `${r[0].padEnd(26)}${r[1].padStart(10)}${r[2].padStart(12)}${r[3].padStart(10)}\n`).join('') +
      `skopeo sync / airlock mirror: ${ratio.toFixed(2)}x (target >= 3x: ${ratio >= 3 ? 'met' : 'NOT met'}); ${rssGoalLine(airlock.rssKb)}\n`,
  )
} finally {
  await nginx.stop()
  await source.stop()
  await regA.stop()
  await regB.stop()
}
