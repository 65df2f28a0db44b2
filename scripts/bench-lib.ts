/**
 * What every benchmark under scripts/bench/ shares: run a command, time it,
 * and read its peak RSS from GNU time.
 */
import {spawn} from 'node:child_process'

import {type Blob, pushImage, type PushedImage, randomLayer} from '../test/helpers/images.js'
import type {RegistryServer} from '../test/helpers/registry.js'

export const MB = 1024 * 1024
export const root = new URL('..', import.meta.url).pathname

export interface Timed {
  ms: number
  code: number
  /** Peak RSS in KiB (from /usr/bin/time -f %M). */
  rssKb?: number
  stderr: string
}

export function timed(cmd: string, args: string[], opts: {rss?: boolean; cwd?: string} = {}): Promise<Timed> {
  const t0 = performance.now()
  const [c, a] = opts.rss ? ['/usr/bin/time', ['-f', 'RSS_KB=%M', cmd, ...args]] : [cmd, args]
  return new Promise((resolve) => {
    const child = spawn(c, a, {stdio: ['ignore', 'ignore', 'pipe'], cwd: opts.cwd ?? root})
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('exit', (code) => {
      const m = /RSS_KB=(\d+)/.exec(stderr)
      resolve({ms: performance.now() - t0, code: code ?? 1, rssKb: m ? Number(m[1]) : undefined, stderr})
    })
  })
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
