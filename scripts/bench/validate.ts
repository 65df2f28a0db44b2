/**
 * Benchmark: loading and validating a 5 MB manifest (about 37,000 images and
 * 15,000 binaries), far beyond what a real install names.
 * Measured beside the floor: js-yaml loading the same file (read and parsed,
 * no positions kept, nothing checked), which validation cannot go under.
 * Target: under 2 s.
 *
 *   node --import tsx scripts/bench/validate.ts
 *
 * Knobs (env): BENCH_RUNS (5, median kept), BENCH_MANIFEST_MB (5).
 */
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {CORE_SCHEMA, load} from 'js-yaml'

import {loadManifest} from '../../src/lib/manifest/load.js'
import {bigManifest} from '../../test/helpers/big-manifest.js'
import {makeTempDir} from '../../test/helpers/tmp.js'
import {secs} from '../bench-lib.js'

const RUNS = Number(process.env.BENCH_RUNS ?? 5)
const BYTES = Number(process.env.BENCH_MANIFEST_MB ?? 5) * 1_000_000
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

const big = bigManifest(BYTES)
const file = join(await makeTempDir('bench-validate-'), 'big.yaml')
await writeFile(file, big.text)

const own: number[] = []
const floor: number[] = []
for (let i = 0; i < RUNS; i++) {
  let t0 = performance.now()
  const m = await loadManifest(file)
  own.push(performance.now() - t0)
  if (m.images.length !== big.images || m.binaries.length !== big.binaries)
    throw new Error('the manifest did not load in full')
  t0 = performance.now()
  load(await readFile(file, 'utf8'), {schema: CORE_SCHEMA})
  floor.push(performance.now() - t0)
}
const [a, b] = [median(own), median(floor)]
process.stdout.write(
  `${(big.text.length / 1e6).toFixed(1)} MB manifest, ${big.images} images and ${big.binaries} binaries, median of ${RUNS}:\n`,
)
process.stdout.write(
  `  airlock loadManifest (parse + validate)  ${secs(a)}  (${secs(Math.min(...own))}-${secs(Math.max(...own))})\n`,
)
process.stdout.write(`  js-yaml load alone (the floor)           ${secs(b)}\n`)
process.stdout.write(`  ${(a / b).toFixed(2)}x the parse alone; target under 2 s: ${a < 2000 ? 'met' : 'NOT met'}\n`)
