/**
 * rpm's version order: `rpmvercmp` for one version or release string, and the
 * comparison of epoch:version-release (EVR) that dnf and rpm use to pick the
 * newest package and to match a versioned dependency.
 */

/** An epoch:version-release. `release` is absent where a dependency names none. */
export interface Evr {
  epoch: number
  version: string
  release?: string
}

const isDigit = (c: number): boolean => c >= 48 && c <= 57
const isAlpha = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122)
const TILDE = 126
const CARET = 94

/**
 * rpm's `rpmvercmp` (rpmio/rpmvercmp.cc), segment by segment: runs of digits
 * compare as numbers (leading zeros dropped, a longer run wins), runs of
 * letters as ASCII strings, a numeric segment beats an alphabetic one; every
 * other character only separates. `~` sorts before anything, even the end
 * (1.0~rc1 < 1.0); `^` sorts after the end but before anything else
 * (1.0 < 1.0^git1 < 1.0.1). Returns -1, 0 or 1.
 */
export function rpmvercmp(a: string, b: string): -1 | 0 | 1 {
  if (a === b) return 0
  let i = 0
  let j = 0
  const skip = (s: string, k: number): number => {
    while (k < s.length) {
      const c = s.charCodeAt(k)
      if (isDigit(c) || isAlpha(c) || c === TILDE || c === CARET) break
      k++
    }
    return k
  }
  while (i < a.length || j < b.length) {
    i = skip(a, i)
    j = skip(b, j)
    const ca = i < a.length ? a.charCodeAt(i) : -1
    const cb = j < b.length ? b.charCodeAt(j) : -1
    if (ca === TILDE || cb === TILDE) {
      if (ca !== TILDE) return 1
      if (cb !== TILDE) return -1
      i++
      j++
      continue
    }
    if (ca === CARET || cb === CARET) {
      if (ca === -1) return -1
      if (cb === -1) return 1
      if (ca !== CARET) return 1
      if (cb !== CARET) return -1
      i++
      j++
      continue
    }
    if (ca === -1 || cb === -1) break
    const numeric = isDigit(ca)
    const inSegment = numeric ? isDigit : isAlpha
    let ei = i
    while (ei < a.length && inSegment(a.charCodeAt(ei))) ei++
    let ej = j
    while (ej < b.length && inSegment(b.charCodeAt(ej))) ej++
    // b's segment is of the other kind: a numeric segment is newer than an alphabetic one.
    if (ej === j) return numeric ? 1 : -1
    let sa = a.slice(i, ei)
    let sb = b.slice(j, ej)
    if (numeric) {
      sa = sa.replace(/^0+/, '')
      sb = sb.replace(/^0+/, '')
      if (sa.length !== sb.length) return sa.length > sb.length ? 1 : -1
    }
    if (sa !== sb) return sa > sb ? 1 : -1
    i = ei
    j = ej
  }
  const endA = i >= a.length
  const endB = j >= b.length
  if (endA && endB) return 0
  return endA ? -1 : 1
}

/**
 * Compare two EVRs: epoch as a number, then version, then release. A release
 * missing on either side is not compared (a dependency on `foo >= 1.2` is met
 * by 1.2-3), as rpm and libsolv do when they match a dependency.
 */
export function compareEvr(a: Evr, b: Evr): -1 | 0 | 1 {
  if (a.epoch !== b.epoch) return a.epoch > b.epoch ? 1 : -1
  const v = rpmvercmp(a.version, b.version)
  if (v !== 0) return v
  if (a.release === undefined || b.release === undefined) return 0
  return rpmvercmp(a.release, b.release)
}

/** `[epoch:]version[-release]` as rpm prints it (epoch 0 left out). */
export function formatEvr(e: Evr): string {
  const head = e.epoch ? `${e.epoch}:${e.version}` : e.version
  return e.release === undefined ? head : `${head}-${e.release}`
}

/** Parse `[epoch:]version[-release]` as a spec file or a rich dependency writes it. */
export function parseEvr(text: string): Evr {
  const colon = text.indexOf(':')
  let epoch = 0
  let rest = text
  if (colon > 0 && /^\d+$/.test(text.slice(0, colon))) {
    epoch = Number(text.slice(0, colon))
    rest = text.slice(colon + 1)
  }
  const dash = rest.lastIndexOf('-')
  return dash > 0 ? {epoch, version: rest.slice(0, dash), release: rest.slice(dash + 1)} : {epoch, version: rest}
}
