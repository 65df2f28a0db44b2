/**
 * One rpm dependency (a Provides or Requires entry) and whether a provide
 * meets a requirement, as rpm's rpmdsCompare decides it: two version ranges
 * that overlap.
 */
import {compareEvr, type Evr, formatEvr} from './version.js'

/** The comparison of a versioned dependency, as repodata writes it. */
export type DepFlag = 'EQ' | 'LT' | 'GT' | 'LE' | 'GE'

export interface Dep {
  /** A name, a capability such as `libc.so.6()(64bit)`, a path, or a rich dependency `( ... )`. */
  name: string
  flags?: DepFlag
  evr?: Evr
  /** `pre="1"`: needed before the package's scriptlets run (Requires(pre)); resolved the same. */
  pre?: boolean
}

const FLAG_TEXT: Record<DepFlag, string> = {EQ: '=', LT: '<', GT: '>', LE: '<=', GE: '>='}

export function formatDep(d: Dep): string {
  return d.flags && d.evr ? `${d.name} ${FLAG_TEXT[d.flags]} ${formatEvr(d.evr)}` : d.name
}

const less = (f: DepFlag): boolean => f === 'LT' || f === 'LE'
const greater = (f: DepFlag): boolean => f === 'GT' || f === 'GE'
const equal = (f: DepFlag): boolean => f === 'EQ' || f === 'LE' || f === 'GE'

/**
 * Whether `provide` meets `require`: same name, and where both are
 * versioned, ranges that overlap (an unversioned side matches any version,
 * as in rpm).
 */
export function provideMeets(provide: Dep, require: Dep): boolean {
  if (provide.name !== require.name) return false
  if (!provide.flags || !provide.evr || !require.flags || !require.evr) return true
  const sense = compareEvr(provide.evr, require.evr)
  const p = provide.flags
  const r = require.flags
  if (sense < 0) return greater(p) || less(r)
  if (sense > 0) return less(p) || greater(r)
  return (equal(p) && equal(r)) || (less(p) && less(r)) || (greater(p) && greater(r))
}
