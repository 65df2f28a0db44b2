/**
 * Benchmark: the standalone executable. Startup of `airlock --version` from
 * dist/bin/airlock-linux-<arch> against `node bin/run.js --version` and, as
 * the floor neither can go under, `node -e 0`; the three run in turn, run
 * after run, so a machine that slows down slows all three. Target: the
 * executable under 150 ms. Then its size, and its share of the demo bundle
 * (manifests/demo.yaml built against the demo's local servers).
 *
 *   node --import tsx scripts/bench/startup.ts
 *
 * Knobs (env): BENCH_RUNS (30 startups each, median kept).
 */
import {spawn} from 'node:child_process'
import {readdir, stat} from 'node:fs/promises'
import {join} from 'node:path'

import {ensureExecutable} from '../../test/helpers/executable.js'
import {makeTempDir} from '../../test/helpers/tmp.js'
import {check, MB, root, timed} from '../bench-lib.js'
import {startInternet} from '../demo/internet.js'

const RUNS = Number(process.env.BENCH_RUNS ?? 30)
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const ms = (x: number) => `${x.toFixed(0)} ms`

/** Wall time of one start to exit, stdout and stderr discarded. */
function startup(cmd: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const child = spawn(cmd, args, {stdio: 'ignore', cwd: root})
    child.on('error', reject)
    child.on('exit', (code) =>
      code === 0 ? resolve(performance.now() - t0) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}`)),
    )
  })
}

const exe = await ensureExecutable()
const contenders: [string, string, string[]][] = [
  ['airlock-linux (standalone)', exe, ['--version']],
  ['node bin/run.js', process.execPath, [join(root, 'bin', 'run.js'), '--version']],
  ['node -e 0 (the floor)', process.execPath, ['-e', '0']],
]
const times = contenders.map(() => [] as number[])
for (const [, cmd, args] of contenders) await startup(cmd, args) // warm the page cache
for (let i = 0; i < RUNS; i++)
  for (const [j, [, cmd, args]] of contenders.entries()) times[j].push(await startup(cmd, args))
process.stdout.write(`startup of --version, median of ${RUNS} (min-max):\n`)
for (const [j, [name]] of contenders.entries()) {
  const t = times[j]
  process.stdout.write(
    `  ${name.padEnd(28)} ${ms(median(t)).padStart(7)}  (${ms(Math.min(...t))}-${ms(Math.max(...t))})\n`,
  )
}
const [own, clone, floor] = times.map(median)
process.stdout.write(
  `  standalone: ${(own / clone).toFixed(2)}x node bin/run.js, ${ms(own - floor)} above node -e 0; target under 150 ms: ${own < 150 ? 'met' : 'NOT met'}\n`,
)

const size = (await stat(exe)).size
process.stdout.write(`\nexecutable: ${(size / MB).toFixed(1)} MB\n`)
const work = await makeTempDir('bench-startup-')
const internet = await startInternet(root, work)
try {
  const bundle = join(work, 'bundle')
  check(
    'airlock build',
    await timed(process.execPath, [
      join(root, 'bin', 'run.js'),
      'build',
      internet.manifest,
      '--store',
      join(work, 'store'),
      '--out',
      bundle,
      '--quiet',
    ]),
  )
  let total = 0
  for (const name of await readdir(bundle)) total += (await stat(join(bundle, name))).size
  process.stdout.write(
    `demo bundle: ${(total / MB).toFixed(1)} MB, of which the executable ${(size / MB).toFixed(1)} MB (${((100 * size) / total).toFixed(0)}%)\n`,
  )
} finally {
  await internet.stop()
}
