import {UsageError} from '../../errors.js'

const UNITS: Record<string, number> = {'': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4}

/**
 * `--split` sizes as `split -b` reads them: `4G`, `500M`, `700MiB`, `1024`
 * (bytes). Units are powers of 1024.
 */
export function parseSize(text: string, flag = '--split'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text)
  if (!m) throw new UsageError(`${flag}: "${text}" is not a size (e.g. 4G, 500M, 1048576)`)
  const n = Math.floor(Number(m[1]) * UNITS[m[2].toLowerCase()])
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`${flag}: "${text}" must be at least 1 byte`)
  return n
}
