const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']

/** 1536 -> "1.5 KiB" */
export function formatBytes(n: number): string {
  let i = 0
  let v = n
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`
}

/** Bytes per second over an elapsed time in milliseconds. */
export function formatRate(bytes: number, ms: number): string {
  if (ms <= 0) return '-'
  return `${formatBytes(Math.round((bytes * 1000) / ms))}/s`
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`
  const s = ms / 1000
  if (s < 60) return `${s.toFixed(1)} s`
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`
}

/** sha256:abcdef0123456789... -> sha256:abcdef012345 */
export function shortDigest(digest: string): string {
  const [alg, hex] = digest.split(':')
  return hex ? `${alg}:${hex.slice(0, 12)}` : digest
}

/** A failed task's line: its title, then the message, the title left out when the message names it already. */
export function failureLine(title: string, message: string): string {
  return message.includes(title) ? message : `${title}: ${message}`
}
