/**
 * What every benchmark under scripts/bench/ shares: run a command, time it,
 * and read its CPU time and peak RSS from GNU time; the builds to compare.
 */
import {spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {type Blob, type PushedImage, pushImage, randomLayer} from '../test/helpers/images.js'
import type {RegistryServer} from '../test/helpers/registry.js'

export const MB = 1024 * 1024
export const root = new URL('..', import.meta.url).pathname

export interface Timed {
  /** Wall time. */
  ms: number
  /** CPU time (user + sys) of the command and every child it waited for (GNU time). */
  cpuMs?: number
  code: number
  /** Peak RSS in KiB of the largest single process (GNU time %M). */
  rssKb?: number
  /** CPU time of the server the command talked to, over the run (see servedBy). */
  serverCpuMs?: number
  stderr: string
}

/** User + system CPU time of a running process, from /proc/PID/stat; undefined when it is gone. */
export function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS
  } catch {
    return undefined
  }
}

/** Linux's USER_HZ, the unit of /proc/PID/stat's times (getconf CLK_TCK). */
const CLOCK_TICKS = 100

/** `run`, with the CPU time the server process `pid` spent meanwhile as its serverCpuMs. */
export async function servedBy(pid: number | undefined, run: () => Promise<Timed>): Promise<Timed> {
  const before = processCpuMs(pid)
  const t = await run()
  const after = processCpuMs(pid)
  return before === undefined || after === undefined ? t : {...t, serverCpuMs: after - before}
}

/**
 * Run a command under GNU time and report its wall time, CPU time (user +
 * sys, its children's included) and peak RSS. `rss` is accepted for the
 * callers that asked for it; every run is measured so now.
 */
export function timed(
  cmd: string,
  args: string[],
  opts: {rss?: boolean; cwd?: string; env?: NodeJS.ProcessEnv} = {},
): Promise<Timed> {
  const t0 = performance.now()
  return new Promise((resolve) => {
    const child = spawn('/usr/bin/time', ['-f', 'BENCH_TIME=%U,%S,%M', cmd, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      cwd: opts.cwd ?? root,
      env: opts.env ?? process.env,
    })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('exit', (code) => {
      const ms = performance.now() - t0
      const m = /BENCH_TIME=([\d.]+),([\d.]+),(\d+)\s*$/.exec(stderr)
      resolve({
        ms,
        cpuMs: m ? (Number(m[1]) + Number(m[2])) * 1000 : undefined,
        code: code ?? 1,
        rssKb: m ? Number(m[3]) : undefined,
        stderr,
      })
    })
  })
}

/**
 * The arguments of `skopeo sync --all --preserve-digests` (the skopeo
 * reference of every registry benchmark): from a sync YAML file or a folder
 * skopeo wrote, to a folder or to `registry/prefix` over plain HTTP.
 */
export function skopeoSyncArgs(from: {yaml: string} | {dir: string}, to: {dir: string} | {registry: string}): string[] {
  return [
    'sync',
    '--all',
    '--preserve-digests',
    ...('yaml' in from ? ['--src', 'yaml'] : ['--src', 'dir']),
    ...('dir' in to ? ['--dest', 'dir'] : ['--dest', 'docker', '--dest-tls-verify=false']),
    'yaml' in from ? from.yaml : from.dir,
    'dir' in to ? to.dir : to.registry,
  ]
}

/** The sum of runs made one after the other (a reference of several commands): times added, the largest RSS. */
export function summed(...runs: Timed[]): Timed {
  return {
    ms: runs.reduce((a, r) => a + r.ms, 0),
    cpuMs: runs.reduce((a, r) => a + (r.cpuMs ?? 0), 0),
    code: runs.find((r) => r.code !== 0)?.code ?? 0,
    rssKb: Math.max(...runs.map((r) => r.rssKb ?? 0)),
    serverCpuMs: runs.some((r) => r.serverCpuMs !== undefined)
      ? runs.reduce((a, r) => a + (r.serverCpuMs ?? 0), 0)
      : undefined,
    stderr: runs.map((r) => r.stderr).join(''),
  }
}

/** The machine's load averages (1, 5, 15 minutes), to print beside every figure. */
export function loadAverage(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
  } catch {
    return 'unknown'
  }
}

/** One airlock build a benchmark runs: this checkout's, or the baseline `bench.ts --baseline REV` built. */
export interface Build {
  /** `new`, or `old` for the baseline. */
  name: 'new' | 'old'
  /** The commit it was built from, short. */
  rev: string
  /** The checkout's root (its bin/run.js, dist/ and oclif.manifest.json). */
  root: string
  cli: string
}

/**
 * This checkout's build, then the baseline's when `bench.ts --baseline REV`
 * built one (AIRLOCK_BENCH_BASELINE names its checkout).
 */
export function builds(env: NodeJS.ProcessEnv = process.env): Build[] {
  const list: Build[] = [
    {name: 'new', rev: env.AIRLOCK_BENCH_REV ?? 'this checkout', root, cli: join(root, 'bin/run.js')},
  ]
  const base = env.AIRLOCK_BENCH_BASELINE
  if (base)
    list.push({
      name: 'old',
      rev: env.AIRLOCK_BENCH_BASELINE_REV ?? 'baseline',
      root: base,
      cli: join(base, 'bin/run.js'),
    })
  return list
}

/** Whether a build's command takes a flag (a baseline may predate it), read from its oclif.manifest.json. */
export function hasFlag(build: Build, command: string, flag: string): boolean {
  try {
    const manifest = JSON.parse(readFileSync(join(build.root, 'oclif.manifest.json'), 'utf8')) as {
      commands: Record<string, {flags?: Record<string, unknown>}>
    }
    return Boolean(manifest.commands[command]?.flags?.[flag])
  } catch {
    return false
  }
}

/** The median of some numbers. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}

/** Stop the benchmark when a measured command failed: its time would mean nothing. */
export function check(what: string, t: Timed): Timed {
  if (t.code !== 0) {
    process.stderr.write(`${what} failed (exit ${t.code}):\n${t.stderr.slice(-2000)}\n`)
    process.exit(1)
  }
  return t
}

export const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`

/**
 * The goals of docs/performance.md (issue 26), in one place: `goals` checks
 * them on its two sets; the other benchmarks print the same figures beside
 * their own references, which differ (a throttled link, a `skopeo copy`
 * loop, no `sync -f`), so there they are a guide, not the verdict.
 * Ratios are airlock's wall time over the reference's (`max`), or the
 * reference's over airlock's (`faster`).
 */
export const GOALS = {
  /** Peak RSS of every job, both sets, MB. */
  rssMb: 150,
  scale: {
    pullMaxVsCurl: 1.2,
    pullFasterThanSkopeo: 1.5,
    bundleMaxVsTar: 0.8,
    importNginxMaxVsTar: 1.2,
    importRegistryFasterThanSkopeo: 5,
  },
  count: {pullFasterThanSkopeo: 2, pullMaxVsCurl: 1.2, bundleMaxVsTar: 2.5, importRegistryFasterThanSkopeo: 10},
} as const

/** A goal's line for the benchmarks other than `goals`: `<what>: 1.23x (goal <= 1.2x: met)`. */
export function goalLine(what: string, value: number, goal: number, kind: 'max' | 'min'): string {
  const met = kind === 'max' ? value <= goal : value >= goal
  return `${what}: ${value.toFixed(2)}x (goal ${kind === 'max' ? '<=' : '>='} ${goal}x: ${met ? 'met' : 'NOT met'})`
}

/** The peak RSS line: `peak RSS 123 MB (goal <= 150 MB: met)`. */
export function rssGoalLine(rssKb: number | undefined): string {
  const mb = Math.round((rssKb ?? 0) / 1024)
  return `peak RSS ${mb} MB (goal <= ${GOALS.rssMb} MB: ${rssKb !== undefined && mb <= GOALS.rssMb ? 'met' : 'NOT met'})`
}

/**
 * The image set the registry benchmarks share: multi-arch images sharing
 * base layers, as real ones do (distro base, runtime), plus two own layers
 * per platform, OCI and Docker formats alternating.
 */
export async function seedBenchImages(reg: RegistryServer, count: number): Promise<PushedImage[]> {
  const bases: Blob[] = [randomLayer(8 * MB), randomLayer(4 * MB), randomLayer(2 * MB)]
  const images: PushedImage[] = []
  for (let i = 0; i < count; i++) {
    images.push(
      await pushImage(reg, {
        repository: `bench/app${i}`,
        tag: '1.0',
        format: i % 2 === 0 ? 'oci' : 'docker',
        platforms: ['linux/amd64', 'linux/arm64'],
        layers: 2,
        layerSize: (1 + (i % 3)) * 2 * MB,
        baseLayers: bases.slice(0, 1 + (i % 3)),
      }),
    )
  }
  return images
}

/** Small files of 1-16 KB, fixed bytes, one in five a package (the count benchmarks' files). */
export function smallFile(i: number): {path: string; kind: 'binaries' | 'packages'; data: Buffer} {
  const size = 1024 * (1 + (i % 16))
  const data = Buffer.alloc(size)
  for (let off = 0, k = 0; off < size; k++)
    off += createHash('sha256').update(`file/${i}/${k}`).digest().copy(data, off)
  return i % 5 === 4
    ? {kind: 'packages', path: `pkgs/v1/pkg-${i}.tar`, data}
    : {kind: 'binaries', path: `release/v1.${i % 30}.0/bin/linux/amd64/tool-${i}`, data}
}
