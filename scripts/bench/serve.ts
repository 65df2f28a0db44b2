/**
 * Benchmark: `airlock serve` answering 50 concurrent blob downloads out of a
 * bundle of at least 500 MB of images, against nginx (one worker, sendfile)
 * serving the same blobs unpacked on disk, in the same run. Each client is
 * its own curl process; a round is 50 blobs at once, every byte of them.
 * Prints the median time of each over the rounds, the ratio and airlock's
 * peak RSS (the server's VmHWM, read from /proc before it stops).
 *
 *   node --import tsx scripts/bench/serve.ts
 *
 * Knobs (env): BENCH_BLOBS (50: layers, one per client), BENCH_LAYER_MB
 * (11: layer size), BENCH_ROUNDS (3).
 */
import {execFile, spawn} from 'node:child_process'
import {readFile, stat} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {stopChild, trackChild} from '../../test/helpers/cleanup.js'
import {harnessRequest, waitFor} from '../../test/helpers/http.js'
import {startNginx} from '../../test/helpers/nginx.js'
import {freePort} from '../../test/helpers/ports.js'
import {makeRegistryBundle} from '../../test/helpers/registry-bundle-fixture.js'
import {makeTempDir} from '../../test/helpers/tmp.js'
import {MB, root, secs} from '../bench-lib.js'

const BLOBS = Number(process.env.BENCH_BLOBS ?? 50)
const LAYER_MB = Number(process.env.BENCH_LAYER_MB ?? 11)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const exec = promisify(execFile)

const work = await makeTempDir('airlock-bench-serve-')
process.stderr.write(`writing a bundle of ${BLOBS} layers of ${LAYER_MB} MB...\n`)
const specs = Array.from({length: BLOBS / 2}, (_, i) => ({
  ref: `registry.k8s.io/bench/img${i}:1.0`,
  layers: 2,
  layerSize: LAYER_MB * MB,
}))
const bundle = await makeRegistryBundle(specs, {dir: join(work, 'bundle')})
const archiveBytes = (await stat(join(bundle.dir, 'offline-images.tar'))).size
process.stderr.write(`bundle: ${(archiveBytes / MB).toFixed(0)} MB of images\n`)
if (archiveBytes < 500 * MB) process.stderr.write('warning: less than 500 MB; raise BENCH_BLOBS or BENCH_LAYER_MB\n')
const layers = bundle.images.flatMap((img) => img.blobs.filter((b) => b.size >= LAYER_MB * MB)).slice(0, BLOBS)

// nginx serves the same blobs from disk: the layout unpacked.
const www = join(work, 'www')
await exec('mkdir', ['-p', www])
await exec('tar', ['-xf', join(bundle.dir, 'offline-images.tar'), '-C', www])
const nginx = await startNginx({root: www})

const port = await freePort()
const serve = spawn(
  process.execPath,
  [
    join(root, 'bin/run.js'),
    'serve',
    bundle.dir,
    '--listen',
    `127.0.0.1:${port}`,
    '--cache-dir',
    join(work, 'cache'),
    '--quiet',
  ],
  {
    detached: true,
    stdio: ['ignore', 'ignore', 'inherit'],
  },
)
trackChild(serve)
const airlockUrl = `http://127.0.0.1:${port}`
await waitFor('airlock serve', async () => (await harnessRequest(`${airlockUrl}/v2/`)).status === 200, 300_000)

/** 50 curl processes at once, each one blob; resolves with the wall time once all ended with every byte. */
async function round(urlOf: (digest: string) => string): Promise<number> {
  const t0 = performance.now()
  await Promise.all(
    layers.map(async (b) => {
      const {stdout} = await exec('curl', ['-sS', '-f', '-o', '/dev/null', '-w', '%{size_download}', urlOf(b.digest)])
      if (Number(stdout) !== b.size) throw new Error(`${urlOf(b.digest)}: ${stdout} bytes, expected ${b.size}`)
    }),
  )
  return performance.now() - t0
}

async function peakRssKb(pid: number): Promise<number> {
  const m = /VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) : NaN
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

try {
  const a: number[] = []
  const n: number[] = []
  // Warm the page cache for both (they read the same bytes, from two copies), then alternate.
  await round((d) => `${nginx.url}/blobs/sha256/${d.slice(7)}`)
  await round((d) => `${airlockUrl}/v2/bench/img0/blobs/${d}`)
  for (let i = 0; i < ROUNDS; i++) {
    n.push(await round((d) => `${nginx.url}/blobs/sha256/${d.slice(7)}`))
    a.push(await round((d) => `${airlockUrl}/v2/bench/img0/blobs/${d}`))
  }
  const rss = await peakRssKb(serve.pid!)
  const airlockMs = median(a)
  const nginxMs = median(n)
  const total = layers.reduce((s, b) => s + b.size, 0)
  const rows = [
    ['airlock serve', secs(airlockMs), `${(airlockMs / nginxMs).toFixed(2)}x`, `${(rss / 1024).toFixed(0)} MB`],
    ['nginx (sendfile, from disk)', secs(nginxMs), '1.00x', ''],
  ]
  process.stdout.write(
    `serve: ${layers.length} concurrent blob downloads, ${(total / MB).toFixed(0)} MB a round, bundle of ${(archiveBytes / MB).toFixed(0)} MB, median of ${ROUNDS}\n` +
      `airlock rounds: ${a.map(secs).join(', ')}; nginx rounds: ${n.map(secs).join(', ')}\n` +
      `${'server'.padEnd(30)}${'time'.padStart(10)}${'vs nginx'.padStart(10)}${'peak RSS'.padStart(10)}\n` +
      rows.map((r) => `${r[0].padEnd(30)}${r[1].padStart(10)}${r[2].padStart(10)}${r[3].padStart(10)}`).join('\n') +
      `\nratio airlock/nginx: ${(airlockMs / nginxMs).toFixed(2)}\n` +
      `targets: within 1.5x of nginx (${airlockMs / nginxMs <= 1.5 ? 'met' : 'NOT met'}), peak RSS < 200 MB (${rss < 200 * 1024 ? 'met' : 'NOT met'})\n`,
  )
} finally {
  await stopChild(serve)
  await nginx.stop()
}
