import type {TreeMap, TreeNode, TreePair, TreeScalar, TreeSeq} from './tree.js'

/**
 * A parser for the plain subset of YAML that manifests are written in: block
 * maps and sequences, `- key: value` items, single-line plain and quoted
 * scalars, single-line flow collections, comments. It exists for speed (a
 * 5 MB manifest in a fraction of a second); the moment it sees anything else
 * (anchors, tags, block or multi-line scalars, tabs, several documents,
 * duplicate keys, anything malformed) it returns undefined and the caller
 * uses the yaml package instead. It never reports errors itself.
 */
export function fastParse(text: string): {root: TreeNode | null} | undefined {
  try {
    if (ODD_CHARS.test(text)) return undefined
    const entries = scanLines(text)
    if (entries.length === 0) return {root: null}
    const parser = new BlockParser(entries)
    const root = parser.block(entries[0].col)
    if (parser.i !== entries.length) return undefined
    return {root}
  } catch (error) {
    if (error === BAIL) return undefined
    throw error
  }
}

const BAIL = Symbol('bail')
// Tabs, control characters and line breaks other than \n and \r\n: the yaml package has its own rules for them.
const ODD_CHARS = /[\x00-\x09\x0b\x0c\x0e-\x1f\x7f\x85\u2028\u2029\ufeff]|\r(?!\n)/
function bail(): never {
  throw BAIL
}

type Entry =
  | {type: 'dash'; col: number; off: number}
  | {type: 'key'; col: number; off: number; key: string; value?: TreeNode}
  | {type: 'value'; col: number; off: number; value: TreeNode}

/** Splits the text into structural entries, `- ` prefixes becoming entries of their own. */
function scanLines(text: string): Entry[] {
  const entries: Entry[] = []
  let sawContent = false
  let lineStart = 0
  const n = text.length
  while (lineStart <= n) {
    let lineEnd = text.indexOf('\n', lineStart)
    if (lineEnd === -1) lineEnd = n
    let end = lineEnd
    if (end > lineStart && text.charCodeAt(end - 1) === 13) end--
    let p = lineStart
    while (p < end && text.charCodeAt(p) === 32) p++
    if (p < end && text.charCodeAt(p) !== 35 /* # */) {
      const line = text.slice(lineStart, end)
      const col = p - lineStart
      if (col === 0 && /^(---|\.\.\.)(\s|$)/.test(line)) {
        // One leading document marker is fine; anything more is a multi-document file.
        if (sawContent || !/^---\s*(#.*)?$/.test(line)) bail()
      } else if (col === 0 && line.startsWith('%')) {
        bail()
      } else {
        sawContent = true
        new LineScanner(text, p, end, lineStart, entries).scan()
      }
    }
    lineStart = lineEnd + 1
  }
  return entries
}

class LineScanner {
  constructor(
    private readonly text: string,
    private p: number,
    private readonly end: number,
    private readonly lineStart: number,
    private readonly out: Entry[],
  ) {}

  scan(): void {
    const t = this.text
    // `- ` prefixes, possibly several on one line.
    while (t.charCodeAt(this.p) === 45 /* - */ && (this.p + 1 === this.end || t.charCodeAt(this.p + 1) === 32)) {
      this.out.push({type: 'dash', col: this.p - this.lineStart, off: this.p})
      this.p++
      this.skipSpaces()
      if (this.atEndOrComment()) return
    }
    const col = this.p - this.lineStart
    const off = this.p
    const key = this.tryKey()
    if (key === undefined) {
      const value = this.value(false)
      this.expectEnd()
      this.out.push({type: 'value', col, off, value})
      return
    }
    this.skipSpaces()
    if (this.atEndOrComment()) {
      this.out.push({type: 'key', col, off, key})
      return
    }
    const value = this.value(false)
    this.expectEnd()
    this.out.push({type: 'key', col, off, key, value})
  }

  private skipSpaces(): void {
    while (this.p < this.end && this.text.charCodeAt(this.p) === 32) this.p++
  }

  private atEndOrComment(): boolean {
    return this.p >= this.end || this.text.charCodeAt(this.p) === 35
  }

  private expectEnd(): void {
    this.skipSpaces()
    if (!this.atEndOrComment()) bail()
  }

  /** A `key:` at p, or undefined (p unchanged) when the line is not a map entry. */
  private tryKey(): string | undefined {
    const t = this.text
    const c = t[this.p]
    if (c === '"' || c === "'") {
      const start = this.p
      const s = this.quoted()
      if (t[this.p] === ':' && (this.p + 1 === this.end || t[this.p + 1] === ' ')) {
        this.p++
        return s.value as string
      }
      this.p = start
      return undefined
    }
    // A plain key ends at the first `: ` (or a `:` ending the line).
    let q = this.p
    while (q < this.end) {
      const ch = t.charCodeAt(q)
      if (ch === 58 /* : */ && (q + 1 === this.end || t.charCodeAt(q + 1) === 32)) break
      if (ch === 35 /* # */ && t.charCodeAt(q - 1) === 32) return undefined
      q++
    }
    if (q >= this.end) return undefined
    const key = t.slice(this.p, q).trimEnd()
    if (key === '' || !plainStartOk(key, false) || key === '-' || key.startsWith('? ')) bail()
    // Only plain string keys; `1:` or `true:` would be typed keys in YAML.
    if (typeof resolvePlain(key) !== 'string') bail()
    this.p = q + 1
    return key
  }

  /** A scalar or flow collection at p (block context: up to the end of the line or a comment). */
  private value(inFlow: boolean): TreeNode {
    const t = this.text
    const c = t[this.p]
    if (c === '"' || c === "'") return this.quoted()
    if (c === '[' || c === '{') return this.flow()
    const start = this.p
    if (inFlow) {
      while (this.p < this.end) {
        const ch = t[this.p]
        if (ch === ',' || ch === ']' || ch === '}' || ch === '[' || ch === '{') break
        if (ch === ':' && (this.p + 1 === this.end || ' ,[]{}'.includes(t[this.p + 1]))) break
        if (ch === '#' && t[this.p - 1] === ' ') break
        this.p++
      }
    } else {
      while (this.p < this.end) {
        const ch = t[this.p]
        if (ch === '#' && t[this.p - 1] === ' ') break
        // `a: b: c` is an error in YAML; leave it to the full parser.
        if (ch === ':' && (this.p + 1 === this.end || t[this.p + 1] === ' ')) bail()
        this.p++
      }
    }
    const source = t.slice(start, this.p).trimEnd()
    if (source === '' || !plainStartOk(source, inFlow)) bail()
    return {kind: 'scalar', off: start, value: resolvePlain(source), source, plain: true}
  }

  private quoted(): TreeScalar {
    const t = this.text
    const start = this.p
    const q = t[this.p++]
    let out = ''
    for (;;) {
      if (this.p >= this.end) bail() // multi-line quoted scalar
      const ch = t[this.p]
      if (q === "'") {
        if (ch === "'") {
          if (t[this.p + 1] === "'") {
            out += "'"
            this.p += 2
            continue
          }
          this.p++
          break
        }
        out += ch
        this.p++
        continue
      }
      if (ch === '"') {
        this.p++
        break
      }
      if (ch === '\\') {
        const e = t[this.p + 1]
        const simple: Record<string, string> = {'\\': '\\', '"': '"', '/': '/', n: '\n', t: '\t', r: '\r', '0': '\0', ' ': ' '}
        if (e !== undefined && e in simple) {
          out += simple[e]
          this.p += 2
          continue
        }
        if (e === 'u' && /^[0-9A-Fa-f]{4}$/.test(t.slice(this.p + 2, this.p + 6))) {
          const code = Number.parseInt(t.slice(this.p + 2, this.p + 6), 16)
          if (code >= 0xd800 && code <= 0xdfff) bail()
          out += String.fromCharCode(code)
          this.p += 6
          continue
        }
        bail()
      }
      out += ch
      this.p++
    }
    return {kind: 'scalar', off: start, value: out, source: t.slice(start, this.p), plain: false}
  }

  private flow(): TreeNode {
    const t = this.text
    const off = this.p
    const open = t[this.p++]
    const close = open === '[' ? ']' : '}'
    const items: TreeNode[] = []
    const pairs: TreePair[] = []
    const keys = new Set<string>()
    this.skipSpaces()
    if (t[this.p] === close) {
      this.p++
      return open === '[' ? {kind: 'seq', off, items} : {kind: 'map', off, pairs}
    }
    for (;;) {
      this.skipSpaces()
      if (this.p >= this.end) bail()
      if (open === '[') {
        items.push(this.value(true))
      } else {
        const keyOff = this.p
        const keyNode = this.value(true)
        if (keyNode.kind !== 'scalar' || typeof keyNode.value !== 'string') bail()
        if (t[this.p] !== ':' || t[this.p + 1] !== ' ') bail()
        this.p += 2
        this.skipSpaces()
        const key = keyNode.value
        if (keys.has(key)) bail()
        keys.add(key)
        pairs.push({key, keyOff, value: this.value(true)})
      }
      this.skipSpaces()
      const ch = t[this.p]
      if (ch === ',') {
        this.p++
        this.skipSpaces()
        if (t[this.p] === close) bail() // trailing comma: legal, but leave it to the full parser
        continue
      }
      if (ch === close) {
        this.p++
        break
      }
      bail()
    }
    return open === '[' ? {kind: 'seq', off, items} : {kind: 'map', off, pairs}
  }
}

class BlockParser {
  i = 0
  constructor(private readonly entries: Entry[]) {}

  block(col: number): TreeNode {
    const e = this.entries[this.i]
    if (e.col !== col) bail()
    if (e.type === 'dash') return this.seq(col)
    if (e.type === 'key') return this.map(col)
    this.i++
    this.noDeeper(col)
    return e.value
  }

  private seq(col: number): TreeSeq {
    const items: TreeNode[] = []
    const off = this.entries[this.i].off
    while (this.i < this.entries.length) {
      const d = this.entries[this.i]
      if (d.col !== col || d.type !== 'dash') break
      this.i++
      const next = this.entries[this.i]
      if (next && next.col > col) items.push(this.block(next.col))
      else items.push(nullAt(d.off + 1))
    }
    this.noDeeper(col)
    return {kind: 'seq', off, items}
  }

  private map(col: number): TreeMap {
    const pairs: TreePair[] = []
    const keys = new Set<string>()
    const off = this.entries[this.i].off
    while (this.i < this.entries.length) {
      const e = this.entries[this.i]
      if (e.col !== col) break
      if (e.type !== 'key') bail()
      this.i++
      if (keys.has(e.key)) bail()
      keys.add(e.key)
      let value: TreeNode
      if (e.value !== undefined) {
        value = e.value
        this.noDeeper(col)
      } else {
        const next = this.entries[this.i]
        if (next && next.col > col) value = this.block(next.col)
        else if (next && next.col === col && next.type === 'dash') value = this.seq(col)
        else value = nullAt(e.off + e.key.length + 1)
      }
      pairs.push({key: e.key, keyOff: e.off, value})
    }
    this.noDeeper(col)
    return {kind: 'map', off, pairs}
  }

  /** After a complete node at `col`, a deeper line would be a continuation or an error. */
  private noDeeper(col: number): void {
    const next = this.entries[this.i]
    if (next && next.col > col) bail()
  }
}

function nullAt(off: number): TreeScalar {
  return {kind: 'scalar', off, value: null, source: '', plain: true}
}

function plainStartOk(s: string, inFlow: boolean): boolean {
  const c = s[0]
  if ('[]{},#&*!|>\'"%@`'.includes(c)) return false
  if ((c === '-' || c === '?' || c === ':') && (s.length === 1 || s[1] === ' ')) return false
  if (inFlow && s.includes(': ')) return false
  return true
}

// YAML 1.2 core schema, as the yaml package resolves plain scalars.
const NULL = /^(?:~|null|Null|NULL)$/
const TRUE = /^(?:true|True|TRUE)$/
const FALSE = /^(?:false|False|FALSE)$/
const INT = /^[-+]?[0-9]+$/
const OCT = /^0o[0-7]+$/
const HEX = /^0x[0-9a-fA-F]+$/
const FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/
const SPECIAL_FLOAT = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/

function resolvePlain(s: string): string | number | boolean | null {
  const c = s.charCodeAt(0)
  // Most scalars start with a letter other than n/t/f/N/T/F: skip the regexes (hot path).
  const maybeSpecial = (c >= 48 && c <= 57) || c === 45 || c === 43 || c === 46 || c === 126 || 'ntfNTF'.includes(s[0])
  if (!maybeSpecial) return s
  if (NULL.test(s)) return null
  if (TRUE.test(s)) return true
  if (FALSE.test(s)) return false
  if (INT.test(s)) return Number(s)
  if (OCT.test(s)) return Number.parseInt(s.slice(2), 8)
  if (HEX.test(s)) return Number.parseInt(s.slice(2), 16)
  if (FLOAT.test(s)) return Number(s)
  if (SPECIAL_FLOAT.test(s)) return s.includes('nan') || s.includes('NaN') || s.includes('NAN') ? Number.NaN : s.startsWith('-') ? -Infinity : Infinity
  return s
}
