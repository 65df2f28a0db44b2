/**
 * Debian version comparison, as dpkg does it (deb-version(7),
 * lib/dpkg/version.c): `[epoch:]upstream[-revision]`; epochs numerically,
 * then upstream and revision each by verrevcmp: runs of non-digits compared
 * character by character (`~` before everything, even the end; letters
 * before other characters), runs of digits numerically.
 */

export interface DebVersion {
  epoch: number
  upstream: string
  revision: string
}

export function parseDebVersion(v: string): DebVersion {
  const s = v.trim()
  const colon = s.indexOf(':')
  const epoch = colon > 0 ? Number.parseInt(s.slice(0, colon), 10) || 0 : 0
  const rest = colon > 0 ? s.slice(colon + 1) : s
  const dash = rest.lastIndexOf('-')
  return dash >= 0
    ? {epoch, upstream: rest.slice(0, dash), revision: rest.slice(dash + 1)}
    : {epoch, upstream: rest, revision: ''}
}

function order(c: number): number {
  if (c >= 0x30 && c <= 0x39) return 0
  if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) return c
  if (c === 0x7e) return -1
  if (c) return c + 256
  return 0
}

const isDigit = (c: number) => c >= 0x30 && c <= 0x39

function verrevcmp(a: string, b: string): number {
  let i = 0
  let j = 0
  while (i < a.length || j < b.length) {
    let firstDiff = 0
    while ((i < a.length && !isDigit(a.charCodeAt(i))) || (j < b.length && !isDigit(b.charCodeAt(j)))) {
      const ac = order(i < a.length ? a.charCodeAt(i) : 0)
      const bc = order(j < b.length ? b.charCodeAt(j) : 0)
      if (ac !== bc) return ac - bc
      i++
      j++
    }
    while (a.charCodeAt(i) === 0x30) i++
    while (b.charCodeAt(j) === 0x30) j++
    while (i < a.length && isDigit(a.charCodeAt(i)) && j < b.length && isDigit(b.charCodeAt(j))) {
      if (!firstDiff) firstDiff = a.charCodeAt(i) - b.charCodeAt(j)
      i++
      j++
    }
    if (i < a.length && isDigit(a.charCodeAt(i))) return 1
    if (j < b.length && isDigit(b.charCodeAt(j))) return -1
    if (firstDiff) return firstDiff
  }
  return 0
}

/** <0, 0 or >0 as dpkg --compare-versions a lt|eq|gt b. */
export function compareDebVersions(a: string, b: string): number {
  if (a === b) return 0
  const x = parseDebVersion(a)
  const y = parseDebVersion(b)
  if (x.epoch !== y.epoch) return x.epoch - y.epoch
  return verrevcmp(x.upstream, y.upstream) || verrevcmp(x.revision, y.revision)
}

export type VersionOp = '<<' | '<=' | '=' | '>=' | '>>'

/** Whether `version` satisfies `op want` (`<` and `>` are dpkg's old spellings of `<=` and `>=`). */
export function satisfiesVersion(version: string, op: VersionOp, want: string): boolean {
  const c = compareDebVersions(version, want)
  switch (op) {
    case '<<':
      return c < 0
    case '<=':
      return c <= 0
    case '=':
      return c === 0
    case '>=':
      return c >= 0
    case '>>':
      return c > 0
  }
}
