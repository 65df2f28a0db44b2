import {closest} from '../../closest.js'
import {appliesOn, type DebDependency, type DebRelation, formatRelation, parseDependencies} from './depends.js'
import type {DebPackage} from './packages-index.js'
import {compareDebVersions, satisfiesVersion} from './version.js'

/** Every stanza of the repositories of one resolution, by name and by what it provides. */
export class AptUniverse {
  readonly byName = new Map<string, DebPackage[]>()
  readonly provides = new Map<string, {pkg: DebPackage; version?: string}[]>()

  /** A stanza; one with the name, version and architecture of one already added (binary-all beside binary-amd64, a second repository) is left out. */
  add(p: DebPackage): void {
    const list = this.byName.get(p.name)
    if (list?.some((q) => q.version === p.version && q.architecture === p.architecture)) return
    if (list) list.push(p)
    else this.byName.set(p.name, [p])
    if (p.provides) {
      for (const group of parseDependencies(p.provides)) {
        for (const r of group) {
          const l = this.provides.get(r.name) ?? []
          l.push({pkg: p, version: r.op === '=' ? r.version : undefined})
          this.provides.set(r.name, l)
        }
      }
    }
  }
}

/** A name that no repository has, or a dependency none of whose alternatives any repository has. */
export class AptResolveError extends Error {}

export interface AptRequest {
  /** A package name, optionally `name:arch`. */
  name: string
}

const key = (p: DebPackage) => `${p.name}:${p.architecture}`

/**
 * The dependency closure of `requests` on the native architecture `arch`,
 * as apt-get install would compute it on an empty node: each requested
 * package at its newest version; then for each chosen package its
 * Pre-Depends and Depends (and Recommends when asked), a group already met
 * by a chosen package (or something it Provides) adding nothing, else its
 * first alternative that any repository has, at the newest version that
 * satisfies the constraint, a real package before one that only provides
 * the name. Architecture `all` packages serve every architecture; `:any`
 * and `:native` qualifiers resolve on the native architecture.
 * Packages nobody declares a dependency on (Essential ones a node already
 * has) are not added.
 */
export function aptClosure(
  u: AptUniverse,
  requests: AptRequest[],
  opts: {arch: string; recommends: boolean},
): DebPackage[] {
  const chosen = new Map<string, DebPackage>()
  const queue: DebPackage[] = []
  const choose = (p: DebPackage) => {
    const k = key(p)
    const have = chosen.get(k)
    if (have) {
      if (have !== p) throw new AptResolveError(`${p.name} is needed both at ${have.version} and at ${p.version}`)
      return
    }
    chosen.set(k, p)
    queue.push(p)
  }
  const archOk = (p: DebPackage, r?: DebRelation) => {
    const q = r?.archQualifier
    if (q && q !== 'any' && q !== 'native' && q !== opts.arch) return p.architecture === q
    return p.architecture === opts.arch || p.architecture === 'all'
  }
  const real = (r: DebRelation) =>
    (u.byName.get(r.name) ?? [])
      .filter((p) => archOk(p, r) && (!r.op || satisfiesVersion(p.version, r.op, r.version!)))
      .sort((a, b) => compareDebVersions(b.version, a.version))
  const providers = (r: DebRelation) =>
    (u.provides.get(r.name) ?? [])
      .filter(
        (v) =>
          archOk(v.pkg, r) && (!r.op || (v.version !== undefined && satisfiesVersion(v.version, r.op, r.version!))),
      )
      .map((v) => v.pkg)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : compareDebVersions(b.version, a.version)))
  const met = (r: DebRelation) =>
    real(r).some((p) => chosen.get(key(p)) === p) || providers(r).some((p) => chosen.get(key(p)) === p)
  const candidate = (r: DebRelation): DebPackage | undefined => {
    const rs = real(r)
    // A package already chosen under this name wins over a newer one: one version per name.
    return rs.find((p) => chosen.get(key(p)) === p) ?? rs[0] ?? providers(r)[0]
  }

  for (const req of requests) {
    const [name, qual] = req.name.split(':')
    const r: DebRelation = {name, ...(qual ? {archQualifier: qual} : {})}
    const p = candidate(r)
    if (!p) {
      const near = closest(name, [...u.byName.keys()])
      throw new AptResolveError(`no repository has the package ${req.name}${near ? `: did you mean "${near}"?` : ''}`)
    }
    choose(p)
  }
  for (let i = 0; i < queue.length; i++) {
    const p = queue[i]
    const groups: {field: string; deps: DebDependency[]}[] = []
    try {
      if (p.preDepends) groups.push({field: 'Pre-Depends', deps: parseDependencies(p.preDepends)})
      if (p.depends) groups.push({field: 'Depends', deps: parseDependencies(p.depends)})
      if (opts.recommends && p.recommends) groups.push({field: 'Recommends', deps: parseDependencies(p.recommends)})
    } catch (err) {
      throw new AptResolveError(`${p.name} ${p.version}: ${(err as Error).message}`)
    }
    for (const {field, deps} of groups) {
      for (const group of deps) {
        const alts = group.filter((r) => appliesOn(r, opts.arch))
        if (alts.length === 0 || alts.some(met)) continue
        let picked: DebPackage | undefined
        for (const r of alts) if ((picked = candidate(r))) break
        if (picked) choose(picked)
        else if (field !== 'Recommends') {
          throw new AptResolveError(
            `${p.name} ${p.version} (${p.architecture}) ${field === 'Depends' ? 'depends' : 'pre-depends'} on ${alts.map(formatRelation).join(' | ')}, which no repository has for ${opts.arch}`,
          )
        }
      }
    }
  }
  return [...chosen.values()]
}
