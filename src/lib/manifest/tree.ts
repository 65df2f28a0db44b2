import {CORE_SCHEMA, load, type State, YAMLException} from 'js-yaml'

/**
 * The YAML document as the validator sees it: maps, sequences and scalars,
 * each with the string offset it starts at, so every problem gets a
 * line:column.
 */
export type TreeNode = TreeMap | TreeSeq | TreeScalar

export interface TreeMap {
  kind: 'map'
  off: number
  pairs: TreePair[]
}

export interface TreePair {
  key: string
  keyOff: number
  value: TreeNode
}

export interface TreeSeq {
  kind: 'seq'
  off: number
  items: TreeNode[]
}

export interface TreeScalar {
  kind: 'scalar'
  off: number
  value: string | number | boolean | null
  /** The scalar as written (for plain scalars YAML typed as numbers, e.g. a sha256 of digits only). */
  source: string
  /** True for unquoted scalars, the only ones YAML gives a non-string type. */
  plain: boolean
}

export interface ParsedTree {
  /** undefined for a document with no content (empty, or comments only), or when there are errors. */
  root?: TreeNode
  /** YAML syntax errors, by offset. */
  errors: {off: number; message: string}[]
  /** 1-based line and column (in UTF-16 code units, as editors count) of an offset. */
  pos(off: number): {line: number; column: number}
}

// Aliases let a short file expand enormously; past this many, give up on it.
const MAX_ALIASES = 10_000

/** One node js-yaml composed, as its listener saw it open and close. */
interface Frame {
  open: number
  children: Frame[]
  // Set at close:
  start: number
  end: number
  node?: TreeNode
  result: unknown
}

class TreeError extends Error {
  constructor(
    readonly off: number,
    message: string,
  ) {
    super(message)
  }
}

/**
 * Parse YAML text with js-yaml (YAML 1.2 core schema: no timestamps, no
 * merge keys). Its listener reports every node, keys included, as it opens
 * and closes; the tree is built from those events, positions from the text
 * and values from what js-yaml resolved.
 */
export function parseTree(text: string): ParsedTree {
  const pos = positions(text)
  const b = new Builder(text, pos)
  try {
    load(text, {schema: CORE_SCHEMA, listener: (event, state) => b.event(event, state)})
  } catch (error) {
    if (error instanceof YAMLException) return {errors: [b.syntaxError(error)], pos}
    if (error instanceof TreeError) return {errors: [{off: error.off, message: error.message}], pos}
    throw error
  }
  const root = b.root?.node
  // A document of only comments composes one empty node.
  if (!root || (root.kind === 'scalar' && root.value === null && root.source === '')) return {errors: [], pos}
  return {root, errors: [], pos}
}

function positions(text: string): ParsedTree['pos'] {
  const starts = [0]
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) starts.push(i + 1)
  return (off) => {
    const o = Math.max(0, Math.min(off, text.length))
    let lo = 0
    let hi = starts.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (starts[mid] <= o) lo = mid
      else hi = mid - 1
    }
    return {line: lo + 1, column: o - starts[lo] + 1}
  }
}

class Builder {
  root?: Frame
  private readonly stack: Frame[] = []
  private readonly anchors = new Map<string, TreeNode>()
  /** How many alias expansions each node holds, aliases inside aliases included; absent means none. */
  private readonly aliasCount = new WeakMap<TreeNode, number>()
  private secondDocument?: number

  constructor(
    private readonly text: string,
    private readonly pos: ParsedTree['pos'],
  ) {}

  event(event: 'open' | 'close', state: State): void {
    if (event === 'open') {
      const frame: Frame = {open: state.position, children: [], start: 0, end: 0, result: undefined}
      const parent = this.stack.at(-1)
      if (parent) parent.children.push(frame)
      else if (this.root) this.secondDocument ??= state.position
      else this.root = frame
      this.stack.push(frame)
      return
    }
    const frame = this.stack.pop()!
    frame.end = state.position
    frame.start = this.contentStart(frame.open, frame.end)
    frame.result = state.result
    if (this.secondDocument !== undefined) return
    frame.node = this.build(frame, state)
    // The anchor of a node is still set when it closes (collections restore it after their entries).
    const anchor = (state as State & {anchor: string | null}).anchor
    if (anchor !== null && anchor !== undefined) this.anchors.set(anchor, frame.node)
  }

  /** A YAMLException as a problem at its mark, with a message a manifest author can act on. */
  syntaxError(error: YAMLException): {off: number; message: string} {
    if (!error.mark) {
      // "expected a single document": point at the second document's start.
      let off = this.secondDocument ?? 0
      let j = off
      while (j > 0 && isSpace(this.text.charCodeAt(j - 1))) j--
      if (this.text.slice(j - 3, j) === '---') off = j - 3
      return {off, message: `${error.reason}: a manifest is one YAML document`}
    }
    const off = error.mark.position
    if (error.reason === 'duplicated mapping key') return {off, message: this.duplicateKey(off)}
    return {off, message: error.reason}
  }

  private duplicateKey(off: number): string {
    // The duplicate key closed already; its mapping is the innermost frame still open.
    const map = this.stack.at(-1)
    const dup = map?.children.find((c) => c.start === off || c.open === off)
    const key = dup ? keyString(dup.result) : undefined
    const first =
      key === undefined
        ? undefined
        : map!.children.find((c, i) => i % 2 === 0 && c.start < off && keyString(c.result) === key)
    if (key === undefined) return 'duplicate key: map keys must be unique'
    const where = first ? ` (also on line ${this.pos(first.start).line})` : ''
    return `duplicate key "${key}"${where}: map keys must be unique`
  }

  /** Where the node's content begins: past blank space, comments and its properties (&anchor, !tag). */
  private contentStart(from: number, end: number): number {
    const t = this.text
    let i = from
    while (i < end) {
      const c = t.charCodeAt(i)
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++
      else if (c === 0x23 /* # */) {
        while (i < end && t.charCodeAt(i) !== 0x0a) i++
      } else if (c === 0x26 /* & */ || c === 0x21 /* ! */) {
        while (i < end && !isSpace(t.charCodeAt(i))) i++
      } else break
    }
    return i
  }

  private build(f: Frame, state: State): TreeNode {
    const t = this.text
    const empty = f.start >= f.end
    if (!empty && t.charCodeAt(f.start) === 0x2a /* * */) return this.alias(f)
    if (state.kind === 'mapping' && isRecord(f.result)) return this.map(f)
    if (state.kind === 'sequence' && Array.isArray(f.result)) return this.seq(f)
    if (empty) return {kind: 'scalar', off: f.open, value: null, source: '', plain: true}
    const first = t[f.start]
    const plain = first !== '"' && first !== "'" && first !== '|' && first !== '>'
    const source = t.slice(f.start, f.end)
    return {kind: 'scalar', off: f.start, value: scalarValue(f.result), source: plain ? source.trim() : source, plain}
  }

  private alias(f: Frame): TreeNode {
    let e = f.start + 1
    while (e < f.end && !isSpace(this.text.charCodeAt(e)) && !',[]{}'.includes(this.text[e])) e++
    const name = this.text.slice(f.start + 1, e)
    const target = this.anchors.get(name)
    if (!target) throw new TreeError(f.start, `alias *${name} refers to a node that contains it`)
    const node = {...target, off: f.start}
    const count = 1 + (this.aliasCount.get(target) ?? 0)
    if (count > MAX_ALIASES) throw new AliasLimit(f.start)
    this.aliasCount.set(node, count)
    return node
  }

  private map(f: Frame): TreeNode {
    const result = f.result as Record<string, unknown>
    const children = f.children
    const pairs: TreePair[] = []
    // Entries come as key, value, key, value...; a block mapping ends with one empty attempt at a next key.
    let n = children.length
    if (n % 2 === 1 && children[n - 1].node?.kind === 'scalar' && children[n - 1].start >= children[n - 1].end) n--
    let aligned = n % 2 === 0 && n / 2 === Object.keys(result).length
    for (let i = 0; aligned && i < n; i += 2) {
      const k = children[i]
      const v = children[i + 1]
      const jsKey = keyString(k.result)
      if (!Object.hasOwn(result, jsKey) || !Object.is(result[jsKey], v.result)) aligned = false
      const key =
        k.node!.kind === 'scalar' ? (k.result === null ? '' : String(k.result)) : this.text.slice(k.start, k.end).trim()
      pairs.push({key, keyOff: k.start, value: v.node!})
    }
    // Explicit (?) keys and [a: b] pairs do not follow that pattern: keep the values, at the mapping's position.
    const node: TreeMap = aligned ? {kind: 'map', off: f.start, pairs} : (fromValue(result, f.start) as TreeMap)
    if (aligned)
      this.sumAliases(
        node,
        pairs.map((p) => p.value),
      )
    return node
  }

  private seq(f: Frame): TreeNode {
    const items = f.result as unknown[]
    const out: TreeNode[] = []
    let j = 0
    for (const item of items) {
      const c = f.children[j]
      if (c && Object.is(c.result, item)) {
        out.push(c.node!)
        j++
      } else if (item === null) {
        // An empty `-` entry composes no node: place it at its dash.
        const off = this.contentStart(j === 0 ? f.start : f.children[j - 1].end, f.end)
        out.push({kind: 'scalar', off, value: null, source: '', plain: true})
      } else {
        return fromValue(items, f.start)
      }
    }
    if (j !== f.children.length) return fromValue(items, f.start)
    const node: TreeSeq = {kind: 'seq', off: f.start, items: out}
    this.sumAliases(node, out)
    return node
  }

  private sumAliases(node: TreeNode, children: TreeNode[]): void {
    let sum = 0
    for (const c of children) {
      const k = this.aliasCount.get(c)
      if (k === undefined) continue
      sum += k
      if (sum > MAX_ALIASES) throw new AliasLimit(c.off)
    }
    if (sum > 0) this.aliasCount.set(node, sum)
  }
}

class AliasLimit extends TreeError {
  constructor(off: number) {
    super(off, `more than ${MAX_ALIASES} aliases: refusing to expand them`)
  }
}

/** The key js-yaml stored a mapping entry under. */
function keyString(v: unknown): string {
  if (Array.isArray(v)) return String(v)
  if (typeof v === 'object' && v !== null) return '[object Object]'
  return String(v)
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || Number.isNaN(c)
}

function scalarValue(v: unknown): TreeScalar['value'] {
  if (v === null || v === undefined) return null
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v
  return String(v)
}

/** A subtree from loaded values alone, every node at `off`; for shapes the events do not map onto. */
function fromValue(v: unknown, off: number, ancestors = new Set<unknown>()): TreeNode {
  if (typeof v === 'object' && v !== null) {
    if (ancestors.has(v)) throw new TreeError(off, 'an alias refers to a node that contains it')
    ancestors.add(v)
    const node: TreeNode = Array.isArray(v)
      ? {kind: 'seq', off, items: v.map((x) => fromValue(x, off, ancestors))}
      : {
          kind: 'map',
          off,
          pairs: Object.entries(v).map(([key, x]) => ({key, keyOff: off, value: fromValue(x, off, ancestors)})),
        }
    ancestors.delete(v)
    return node
  }
  const value = scalarValue(v)
  return {kind: 'scalar', off, value, source: value === null ? '' : String(value), plain: typeof value !== 'string'}
}
