/**
 * The dependency closure of rpm packages, computed from repodata alone (no
 * dnf on the bastion), over every `type: rpm` entry together as dnf would
 * with all of them configured.
 *
 * What is followed: Requires by package name, by provided capability (with
 * version ranges, rpmdsCompare's overlap), by file path, and rich
 * dependencies. A file path is looked up in primary.xml first (its provides,
 * and the paths it lists: /etc/*, *bin/*, /usr/lib/sendmail); only the paths
 * still unmet are looked up in filelists.xml, read once per round, as dnf
 * does when a file dependency is not in primary. Among providers a package
 * already in the closure wins, then one whose name is the required name, then
 * the newest EVR, then the entry's architecture order, then entry order.
 *
 * Rich dependencies, for a node whose installed set is not known here: `or`
 * takes an alternative the closure already meets, else the first that can
 * be met; `and` all; `with`/`without` one package that meets both / the
 * first but not the second. A condition (`if`, `unless`) counts as met when
 * the closure holds it, as possible when the repositories provide it (the
 * node may have it installed), as unmet otherwise; a branch a node may need is
 * taken (if provided), so the mirror never lacks one: `(a if b)` takes a when
 * b is in the closure, and also, when it can be had, if b is merely available;
 * `(a unless b)` takes a unless the closure holds b; the `else` branches alike.
 * Conditions are evaluated again once the closure stops growing.
 *
 * Left out, and why: `rpmlib(...)` requirements (features of the rpm program
 * on the node, provided by no package); Recommends, Suggests, Supplements and
 * Enhances (weak: dnf installs without them when they are absent); Conflicts
 * and Obsoletes (a mirror may hold both sides; dnf on the node decides);
 * package versions that only an installed set could rule out.
 */
import {closest} from '../../closest.js'
import {type Dep, formatDep, provideMeets} from './dependency.js'
import type {RpmPackage} from './primary.js'
import {isRich, parseRich, type Rich, RichSyntaxError} from './rich.js'
import {compareEvr} from './version.js'

/** A package of one entry's repository. */
export interface RpmCandidate extends RpmPackage {
  /** Index of the entry (repository) it comes from. */
  repo: number
}

export interface ClosureInput {
  /** Every package of every repository, already filtered to the entries' architectures. */
  packages: RpmCandidate[]
  /** Per entry, its architectures in order of preference (noarch included). */
  architectures: string[][]
  /** The names asked for, per entry. */
  requested: string[][]
  /** The packages of any repository holding each path, from filelists.xml (called only when primary does not tell). */
  loadFiles(paths: ReadonlySet<string>): Promise<Map<string, RpmCandidate[]>>
}

export class ClosureError extends Error {
  constructor(
    message: string,
    readonly problems: string[],
    readonly suggestions: string[] = [],
  ) {
    super(message)
  }
}

const keyOf = (p: RpmCandidate): string => `${p.repo}\0${p.checksum.value}`
export const nevraOf = (p: RpmPackage): string =>
  `${p.name}-${p.evr.epoch ? `${p.evr.epoch}:` : ''}${p.evr.version}-${p.evr.release}.${p.arch}`

type State = 'met' | 'possible' | 'unmet'

export async function resolveClosure(input: ClosureInput): Promise<RpmCandidate[]> {
  const byProvide = new Map<string, {p: RpmCandidate; dep: Dep}[]>()
  const byFile = new Map<string, RpmCandidate[]>()
  const push = <K, V>(m: Map<K, V[]>, k: K, v: V) => {
    const l = m.get(k)
    if (l) l.push(v)
    else m.set(k, [v])
  }
  for (const p of input.packages) {
    let self = false
    for (const d of p.provides) {
      push(byProvide, d.name, {p, dep: d})
      if (d.name === p.name) self = true
    }
    if (!self) push(byProvide, p.name, {p, dep: {name: p.name, flags: 'EQ', evr: p.evr}})
    for (const f of p.files) push(byFile, f, p)
  }
  const filelisted = new Map<string, RpmCandidate[]>()
  const chosen = new Map<string, RpmCandidate>()
  const queue: RpmCandidate[] = []
  const problems: string[] = []
  const suggestions: string[] = []
  const deferred: {dep: Dep; from: RpmCandidate}[] = []
  const riches: {rich: Rich; from: RpmCandidate; text: string}[] = []
  const parsed = new Map<string, Rich>()

  const archRank = (p: RpmCandidate): number => {
    const i = input.architectures[p.repo]?.indexOf(p.arch) ?? -1
    return i < 0 ? 99 : i
  }
  const providers = (dep: Dep): RpmCandidate[] => {
    const out = new Set<RpmCandidate>()
    for (const {p, dep: prov} of byProvide.get(dep.name) ?? []) if (provideMeets(prov, dep)) out.add(p)
    if (dep.name.startsWith('/')) {
      for (const p of byFile.get(dep.name) ?? []) out.add(p)
      for (const p of filelisted.get(dep.name) ?? []) out.add(p)
    }
    return [...out]
  }
  const best = (list: RpmCandidate[], name: string): RpmCandidate =>
    [...list].sort(
      (a, b) =>
        Number(b.name === name) - Number(a.name === name) ||
        compareEvr(b.evr, a.evr) ||
        archRank(a) - archRank(b) ||
        a.repo - b.repo,
    )[0]
  const add = (p: RpmCandidate): void => {
    const k = keyOf(p)
    if (chosen.has(k)) return
    chosen.set(k, p)
    queue.push(p)
  }
  const inClosure = (list: RpmCandidate[]): boolean => list.some((p) => chosen.has(keyOf(p)))

  // A rich term's candidate packages, for with/without (simple terms and nested with/without only).
  const termProviders = (r: Rich): RpmCandidate[] => {
    if (r.op === 'dep') return providers(r.dep)
    if (r.op === 'with') return r.terms.map(termProviders).reduce((a, b) => a.filter((p) => b.includes(p)))
    if (r.op === 'without') {
      const out = termProviders(r.right)
      return termProviders(r.left).filter((p) => !out.includes(p))
    }
    throw new RichSyntaxError(`"${r.op}" inside with/without is not supported`)
  }
  const state = (r: Rich): State => {
    switch (r.op) {
      case 'dep':
      case 'with':
      case 'without': {
        const list = termProviders(r)
        return inClosure(list) ? 'met' : list.length > 0 ? 'possible' : 'unmet'
      }
      case 'and': {
        const s = r.terms.map(state)
        return s.every((x) => x === 'met') ? 'met' : s.includes('unmet') ? 'unmet' : 'possible'
      }
      case 'or': {
        const s = r.terms.map(state)
        return s.includes('met') ? 'met' : s.includes('possible') ? 'possible' : 'unmet'
      }
      default:
        return 'possible'
    }
  }

  /** Meet `r` for `from`; when `optional`, a term nothing provides is left out without a problem. Returns whether it is met. */
  const need = (r: Rich, from: RpmCandidate, optional: boolean, text: string): boolean => {
    switch (r.op) {
      case 'dep':
        return needDep(r.dep, from, optional, text)
      case 'with':
      case 'without': {
        const list = termProviders(r)
        if (inClosure(list)) return true
        if (list.length === 0) {
          if (!optional) problems.push(`${nevraOf(from)} requires ${text}: no package provides it`)
          return false
        }
        add(best(list, ''))
        return true
      }
      case 'and':
        return r.terms.map((t) => need(t, from, optional, text)).every(Boolean)
      case 'or': {
        const states = r.terms.map(state)
        if (states.includes('met')) return true
        const i = states.indexOf('possible')
        if (i >= 0) return need(r.terms[i], from, optional, text)
        if (!optional) problems.push(`${nevraOf(from)} requires ${text}: no alternative can be met`)
        return false
      }
      case 'if':
      case 'unless': {
        const cond = state(r.cond)
        const holds = r.op === 'if' ? cond === 'met' : cond !== 'met'
        const maybe = cond === 'possible'
        // The branch a node with the condition as in the closure needs: required.
        const taken = holds ? r.then : r.else
        if (taken) need(taken, from, optional, text)
        // The other branch, which a node whose installed set differs may need: taken when it can be had.
        const other = holds ? r.else : r.then
        if (maybe && other) need(other, from, true, text)
        return true
      }
    }
  }
  const needDep = (dep: Dep, from: RpmCandidate, optional: boolean, text: string): boolean => {
    if (dep.name.startsWith('rpmlib(')) return true
    const list = providers(dep)
    if (inClosure(list)) return true
    if (list.length === 0) {
      if (dep.name.startsWith('/') && !filelistsAsked.has(dep.name)) {
        deferred.push({dep, from})
        return true
      }
      if (!optional) problems.push(`${nevraOf(from)} requires ${text}: no package provides it`)
      return false
    }
    add(best(list, dep.name))
    return true
  }
  const filelistsAsked = new Set<string>()

  const requireOf = (dep: Dep, from: RpmCandidate): void => {
    if (!isRich(dep.name)) {
      needDep(dep, from, false, formatDep(dep))
      return
    }
    let rich = parsed.get(dep.name)
    if (!rich) {
      try {
        rich = parseRich(dep.name)
      } catch (e) {
        problems.push(`${nevraOf(from)} requires ${dep.name}: ${(e as Error).message}`)
        return
      }
      parsed.set(dep.name, rich)
    }
    // Evaluated again once the closure stops growing: a condition may be met by then.
    riches.push({rich, from, text: dep.name})
    need(rich, from, false, dep.name)
  }

  // The names asked for: by package name, else by a capability or path it provides.
  const allNames = [...new Set(input.packages.map((p) => p.name))]
  input.requested.forEach((names, repo) => {
    for (const name of names) {
      const own = input.packages.filter((p) => p.name === name)
      const list = own.length > 0 ? own : providers({name})
      if (list.length === 0) {
        const near = closest(name, allNames)
        problems.push(
          `entry ${repo}: no package named ${name} in the repositories${near ? ` (did you mean ${near}?)` : ''}`,
        )
        if (near) suggestions.push(near)
        continue
      }
      add(best(list, name))
    }
  })
  if (problems.length > 0) throw new ClosureError(problems[0], problems, suggestions)

  for (;;) {
    while (queue.length > 0) {
      const p = queue.shift()!
      for (const dep of p.requires) requireOf(dep, p)
    }
    const before = chosen.size
    for (const r of riches) need(r.rich, r.from, false, r.text)
    if (chosen.size !== before) continue
    // File paths primary does not name: one pass over filelists for all of them.
    const paths = new Set(deferred.map((d) => d.dep.name).filter((p) => !filelistsAsked.has(p)))
    if (paths.size === 0) break
    for (const [path, list] of await input.loadFiles(paths)) filelisted.set(path, list)
    for (const p of paths) filelistsAsked.add(p)
    const again = deferred.splice(0)
    for (const d of again) needDep(d.dep, d.from, false, d.dep.name)
  }
  if (problems.length > 0) {
    const unique = [...new Set(problems)]
    throw new ClosureError(unique[0], unique)
  }
  return [...chosen.values()]
}
