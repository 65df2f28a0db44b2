/**
 * Benchmark: a version bump of 10% of the images. v1 is a bundle of the
 * bench's image set; v2 changes one image in ten (new own layers on the same
 * base layers, as a patch release does). The full v2 bundle and the delta
 * `build v2 --since v1` are built in the same run from the same warm store:
 * their sizes and build times side by side.
 *
 *   node --import tsx scripts/bench/delta.ts
 *
 * Knobs (env): BENCH_IMAGES (20; one in ten is bumped).
 */
import {readdir, rm, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {pushImage} from '../../test/helpers/images.js'
import {startRegistry} from '../../test/helpers/registry.js'
import {makeTempDir} from '../../test/helpers/tmp.js'
import {check, MB, root, secs, seedBenchImages, timed} from '../bench-lib.js'

const IMAGES = Number(process.env.BENCH_IMAGES ?? 20)

async function du(dir: string): Promise<number> {
  let n = 0
  for (const e of await readdir(dir, {withFileTypes: true})) if (e.isFile()) n += (await stat(join(dir, e.name))).size
  return n
}

const manifestText = (name: string, refs: string[]) =>
  `apiVersion: airlock/v1\nkind: Manifest\nmetadata:\n  name: ${name}\nspec:\n  images:\n${refs.map((r) => `    - ref: ${r}\n      platforms: [all]\n`).join('')}`

const work = await makeTempDir('airlock-bench-delta-')
const reg = await startRegistry()
try {
  process.stderr.write(`seeding ${IMAGES} multi-arch images...\n`)
  const images = await seedBenchImages(reg, IMAGES)
  const v1Refs = images.map((img) => `${reg.host}/${img.repository}:${img.tag}`)
  const bumped = images.filter((_, i) => i % 10 === 0)
  const v2Refs = [...v1Refs]
  for (const img of bumped) {
    const i = images.indexOf(img)
    const next = await pushImage(reg, {
      repository: img.repository,
      tag: '1.1',
      format: i % 2 === 0 ? 'oci' : 'docker',
      platforms: ['linux/amd64', 'linux/arm64'],
      layers: 2,
      layerSize: (1 + (i % 3)) * 2 * MB,
      baseLayers: img.blobs
        .filter((b) => images.some((o) => o !== img && o.blobs.some((ob) => ob.digest === b.digest)))
        .slice(0, 1),
    })
    v2Refs[i] = `${reg.host}/${next.repository}:${next.tag}`
  }
  const v1 = join(work, 'v1.yaml')
  const v2 = join(work, 'v2.yaml')
  await writeFile(v1, manifestText('bench', v1Refs))
  await writeFile(v2, manifestText('bench', v2Refs))
  const store = join(work, 'store')
  const cli = (args: string[]) =>
    timed(process.execPath, [join(root, 'bin/run.js'), ...args, '--store', store, '--quiet'], {rss: true})

  check('build v1', await cli(['build', v1, '--out', join(work, 'v1'), '--no-importer']))
  // Pull v2 once, so both bundles below are timed from the same warm store.
  check('pull v2', await cli(['pull', v2]))
  const full = check('build v2 (full)', await cli(['build', v2, '--out', join(work, 'full'), '--no-importer']))
  const delta = check(
    'build v2 --since v1',
    await cli(['build', v2, '--out', join(work, 'delta'), '--no-importer', '--since', join(work, 'v1')]),
  )
  const fullBytes = await du(join(work, 'full'))
  const deltaBytes = await du(join(work, 'delta'))

  const mb = (n: number) => `${(n / MB).toFixed(1)} MB`
  const rss = (t: {rssKb?: number}) => `${Math.round((t.rssKb ?? 0) / 1024)} MB`
  process.stdout.write(
    `delta: ${IMAGES} multi-arch images, ${bumped.length} bumped to a new tag (new own layers, same base layers)\n`,
  )
  process.stdout.write(
    `${'run'.padEnd(28)}${'time'.padStart(10)}${'bundle size'.padStart(14)}${'peak RSS'.padStart(10)}\n`,
  )
  process.stdout.write(
    `${'build v2 (full)'.padEnd(28)}${secs(full.ms).padStart(10)}${mb(fullBytes).padStart(14)}${rss(full).padStart(10)}\n`,
  )
  process.stdout.write(
    `${'build v2 --since v1'.padEnd(28)}${secs(delta.ms).padStart(10)}${mb(deltaBytes).padStart(14)}${rss(delta).padStart(10)}\n`,
  )
  process.stdout.write(
    `delta / full: size ${(deltaBytes / fullBytes).toFixed(3)}x, time ${(delta.ms / full.ms).toFixed(2)}x (the delta carries only the bumped images' new blobs)\n`,
  )
} finally {
  await reg.stop()
  await rm(work, {recursive: true, force: true})
}
