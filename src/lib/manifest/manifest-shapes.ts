import {closest} from '../closest.js'
import {PLATFORM_HINT, PLATFORM_RE} from '../oci/platform.js'
import type {TreeMap, TreeNode, TreeSeq} from './tree.js'
import type {SourcePos} from './types.js'

/** A problem before it has a line and column: the offset in the text it points at. */
export interface RawProblem {
  off: number
  path: string
  message: string
}

const SHA256 = /^[0-9a-fA-F]{64}$/

/**
 * The shapes and scalars of a manifest (a mapping, a list, a string, a URL,
 * a sha256, names and platforms), each reporting what it expected at the
 * node's line and column. The section checkers build on it.
 */
export class ManifestShapes {
  readonly problems: RawProblem[] = []
  constructor(
    protected readonly dir: string,
    protected readonly pos: (off: number) => SourcePos,
  ) {}

  protected add(off: number, p: string, message: string): void {
    this.problems.push({off, path: p, message})
  }

  map(node: TreeNode, p: string, expected: string): TreeMap | undefined {
    if (node.kind === 'map') return node
    this.add(node.off, p, `expected ${expected}, got ${describe(node)}`)
    return undefined
  }

  protected seq(node: TreeNode, p: string, expected: string): TreeSeq | undefined {
    if (node.kind === 'seq') return node
    this.add(node.off, p, `expected ${expected}, got ${describe(node)}`)
    return undefined
  }

  /** The known fields of a mapping; reports unknown and missing ones. */
  protected fields<K extends string>(
    map: TreeMap,
    p: string,
    known: K[],
    required: K[],
    unknownHint?: string,
  ): Partial<Record<K, TreeNode>> {
    const out: Partial<Record<K, TreeNode>> = {}
    for (const pair of map.pairs) {
      const fp = p ? `${p}.${pair.key}` : pair.key
      if ((known as string[]).includes(pair.key)) {
        out[pair.key as K] = pair.value
        continue
      }
      const near = closest(pair.key, known)
      const hint = unknownHint ?? (near ? `did you mean "${near}"?` : `expected one of: ${known.join(', ')}`)
      this.add(pair.keyOff, fp, `unknown field "${pair.key}": ${hint}`)
    }
    for (const k of required) {
      if (out[k] === undefined) this.add(map.off, p ? `${p}.${k}` : k, `missing required field "${k}"`)
    }
    return out
  }

  protected string(node: TreeNode, p: string): string | undefined {
    if (node.kind === 'scalar' && typeof node.value === 'string') return node.value
    if (node.kind === 'scalar' && node.value !== null && node.plain) {
      this.add(node.off, p, `expected a string, got ${describe(node)} (quote it: "${node.source}")`)
    } else {
      this.add(node.off, p, `expected a string, got ${describe(node)}`)
    }
    return undefined
  }

  protected boolean(node: TreeNode, p: string): boolean | undefined {
    if (node.kind === 'scalar' && typeof node.value === 'boolean') return node.value
    this.add(node.off, p, `expected true or false, got ${describe(node)}`)
    return undefined
  }

  protected url(node: TreeNode, p: string): string | undefined {
    const s = this.string(node, p)
    if (s === undefined) return undefined
    const problem = checkUrl(s)
    if (problem) {
      this.add(node.off, p, problem)
      return undefined
    }
    return s
  }

  protected sha256(node: TreeNode, p: string): string | undefined {
    // A checksum made only of digits (or digits and one e) is a number to YAML; take it as written.
    const s =
      node.kind === 'scalar' && node.plain && typeof node.value === 'number'
        ? node.source
        : node.kind === 'scalar' && typeof node.value === 'string'
          ? node.value
          : undefined
    if (s === undefined) {
      this.add(node.off, p, `expected a sha256 (64 hex digits), got ${describe(node)}`)
      return undefined
    }
    if (!SHA256.test(s)) {
      const why = s.startsWith('sha256:')
        ? ' (without the sha256: prefix)'
        : ` (got ${s.length} characters${/[^0-9a-fA-F]/.test(s) ? ', not all hex' : ''})`
      this.add(node.off, p, `bad sha256 "${truncate(s)}": expected 64 hex digits${why}`)
      return undefined
    }
    return s.toLowerCase()
  }

  addClaimProblem(off: number, p: string, message: string): void {
    this.add(off, p, message)
  }

  /** A non-empty list of distinct strings, each matching `re`. */
  protected words(node: TreeNode, p: string, re: RegExp, what: string): string[] | undefined {
    const seq = this.seq(node, p, `a list of names`)
    if (!seq) return undefined
    if (seq.items.length === 0) {
      this.add(seq.off, p, `expected at least one name`)
      return undefined
    }
    const out: string[] = []
    let ok = true
    seq.items.forEach((item, i) => {
      const ip = `${p}[${i}]`
      const s = this.string(item, ip)
      if (s === undefined) ok = false
      else if (!re.test(s)) {
        this.add(item.off, ip, `"${truncate(s)}" is not ${what}`)
        ok = false
      } else if (out.includes(s)) {
        this.add(item.off, ip, `duplicate "${s}" (also ${p}[${out.indexOf(s)}])`)
        ok = false
      } else out.push(s)
    })
    return ok ? out : undefined
  }

  protected platforms(node: TreeNode, p: string, allowAll: boolean): string[] | 'all' | undefined {
    const seq = this.seq(node, p, allowAll ? 'a list of os/arch[/variant], or [all]' : 'a list of os/arch[/variant]')
    if (!seq) return undefined
    if (seq.items.length === 0) {
      this.add(seq.off, p, 'expected at least one platform')
      return undefined
    }
    const out: string[] = []
    const seen = new Map<string, number>()
    let ok = true
    let sawAll = false
    seq.items.forEach((item, i) => {
      const ip = `${p}[${i}]`
      const s = this.string(item, ip)
      if (s === undefined) {
        ok = false
        return
      }
      if (s === 'all') {
        if (!allowAll) {
          this.add(item.off, ip, '"all" is only allowed in an image entry\'s platforms; list the platforms here')
          ok = false
        }
        sawAll = true
        return
      }
      if (!PLATFORM_RE.test(s)) {
        this.add(item.off, ip, `"${s}" is not a platform: ${PLATFORM_HINT}`)
        ok = false
        return
      }
      const first = seen.get(s)
      if (first !== undefined) {
        this.add(item.off, ip, `duplicate platform "${s}" (also ${p}[${first}])`)
        ok = false
        return
      }
      seen.set(s, i)
      out.push(s)
    })
    if (sawAll && allowAll) {
      if (seq.items.length > 1) {
        this.add(seq.off, p, '"all" keeps every platform and cannot be combined with others')
        return undefined
      }
      return 'all'
    }
    return ok ? out : undefined
  }
}

/** undefined when the URL is acceptable, else why not. */
export function checkUrl(s: string): string | undefined {
  let u: URL
  try {
    u = new URL(s)
  } catch {
    return `"${truncate(s)}" is not a URL: expected http:// or https://`
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    return `expected an http:// or https:// URL, got ${u.protocol}//`
  if (u.username || u.password) {
    return 'credentials inside a URL are refused (they would end up in the store and the bundle): pass them with flags or the Docker config'
  }
  if (!u.hostname) return 'the URL names no host'
  return undefined
}

export function describe(node: TreeNode): string {
  if (node.kind === 'map') return 'a mapping'
  if (node.kind === 'seq') return 'a list'
  if (node.value === null) return 'nothing'
  if (typeof node.value === 'number') return `the number ${node.source || node.value}`
  if (typeof node.value === 'boolean') return `${node.value}`
  return `"${truncate(node.value)}"`
}

export function truncate(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s
}
