import type {VersionOp} from './version.js'

/** One alternative of a dependency: `libc6 (>= 2.34)`, `foo:any`, `bar [amd64 !i386]`. */
export interface DebRelation {
  name: string
  /** `any`, `native` or an architecture, from `name:qualifier`. */
  archQualifier?: string
  op?: VersionOp
  version?: string
  /** `[amd64 !i386]`: the architectures the relation applies on (rare in binary indexes). */
  archs?: string[]
}

/** A comma-separated group of `|` alternatives: any one satisfies it. */
export type DebDependency = DebRelation[]

const RELATION =
  /^([a-z0-9][a-z0-9+.-]*)(?::([a-z0-9-]+))?\s*(?:\(\s*(<<|<=|=|>=|>>|<|>)\s*([^)\s]+)\s*\))?\s*(?:\[([^\]]*)\])?\s*(?:<[^>]*>\s*)*$/

/** A Depends/Pre-Depends/Recommends/Provides field; a relation that does not parse is an Error naming it. */
export function parseDependencies(field: string): DebDependency[] {
  const out: DebDependency[] = []
  for (const group of field.split(',')) {
    const g = group.trim()
    if (g === '') continue
    out.push(g.split('|').map((alt) => parseRelation(alt.trim())))
  }
  return out
}

function parseRelation(s: string): DebRelation {
  const m = RELATION.exec(s)
  if (!m) throw new Error(`cannot parse the relation "${s}"`)
  const r: DebRelation = {name: m[1]}
  if (m[2]) r.archQualifier = m[2]
  if (m[3]) {
    r.op = m[3] === '<' ? '<=' : m[3] === '>' ? '>=' : (m[3] as VersionOp)
    r.version = m[4]
  }
  if (m[5]) r.archs = m[5].trim().split(/\s+/)
  return r
}

/** Whether a `[...]` restriction lets the relation apply on `arch`. */
export function appliesOn(r: DebRelation, arch: string): boolean {
  if (!r.archs) return true
  const negated = r.archs.every((a) => a.startsWith('!'))
  return negated ? !r.archs.includes(`!${arch}`) : r.archs.includes(arch)
}

export function formatRelation(r: DebRelation): string {
  return `${r.name}${r.archQualifier ? `:${r.archQualifier}` : ''}${r.op ? ` (${r.op} ${r.version})` : ''}`
}
