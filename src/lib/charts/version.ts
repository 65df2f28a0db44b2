/**
 * Order chart versions as SemVer does (numeric parts, a pre-release before
 * its release), tolerating a leading `v` and versions that are not SemVer.
 */
export function compareVersions(a: string, b: string): number {
  const pa = split(a)
  const pb = split(b)
  for (let i = 0; i < Math.max(pa.core.length, pb.core.length); i++) {
    const d = (pa.core[i] ?? 0) - (pb.core[i] ?? 0)
    if (d !== 0) return d
  }
  if (pa.pre === pb.pre) return a.localeCompare(b)
  if (pa.pre === '') return 1
  if (pb.pre === '') return -1
  const xs = pa.pre.split('.')
  const ys = pb.pre.split('.')
  for (let i = 0; i < Math.max(xs.length, ys.length); i++) {
    if (xs[i] === undefined) return -1
    if (ys[i] === undefined) return 1
    const nx = /^\d+$/.test(xs[i])
    const ny = /^\d+$/.test(ys[i])
    if (nx && ny && Number(xs[i]) !== Number(ys[i])) return Number(xs[i]) - Number(ys[i])
    if (nx !== ny) return nx ? -1 : 1
    if (xs[i] !== ys[i]) return xs[i] < ys[i] ? -1 : 1
  }
  return 0
}

function split(v: string): {core: number[]; pre: string} {
  const m = /^v?(\d+(?:\.\d+)*)(?:-([^+]*))?(?:\+.*)?$/.exec(v.trim())
  if (!m) return {core: [], pre: v}
  return {core: m[1].split('.').map(Number), pre: m[2] ?? ''}
}
