import {type Document, isAlias, isMap, isPair, isScalar, isSeq, LineCounter, type Node as YamlNode, parseDocument} from 'yaml'

import {fastParse} from './fast-yaml.js'

/**
 * The YAML document as the validator sees it: maps, sequences and scalars,
 * each with the string offset it starts at, so every problem gets a
 * line:column. Both parsers below produce it.
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
  /** undefined for a document with no content (empty, or comments only). */
  root?: TreeNode
  /** YAML syntax errors, by offset. */
  errors: {off: number; message: string}[]
  lineCounter: LineCounter
}

// Aliases let a short file expand enormously; past this many, give up on it.
const MAX_ALIASES = 10_000

/**
 * Parse YAML text. A fast parser handles the plain block style manifests are
 * written in (the yaml package needs seconds for a 5 MB file); anything it
 * does not fully understand, and every file with an error, goes through the
 * yaml package, which has the last word and the better error messages.
 */
export function parseTree(text: string): ParsedTree {
  const lineCounter = new LineCounter()
  const fast = fastParse(text)
  if (fast) {
    // Hot path for big files: only the newline scan, no full parse. Line starts go in ascending order.
    lineCounter.addNewLine(0)
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lineCounter.addNewLine(i + 1)
    return {root: fast.root ?? undefined, errors: [], lineCounter}
  }
  return parseWithYaml(text, lineCounter)
}

/** The yaml package's view of `text`, converted; exported so tests can compare both parsers. */
export function parseWithYaml(text: string, lineCounter = new LineCounter()): ParsedTree {
  const doc = parseDocument(text, {lineCounter, prettyErrors: false, uniqueKeys: true, keepSourceTokens: false})
  const errors = doc.errors.map((e) => ({off: e.pos[0], message: e.message}))
  if (errors.length > 0) return {errors, lineCounter}
  if (doc.contents === null) return {errors, lineCounter}
  const aliases = {count: 0}
  try {
    return {root: convert(doc, doc.contents as YamlNode, text, aliases), errors, lineCounter}
  } catch (error) {
    if (error instanceof AliasLimit) return {errors: [{off: error.off, message: error.message}], lineCounter}
    throw error
  }
}

class AliasLimit extends Error {
  constructor(readonly off: number) {
    super(`more than ${MAX_ALIASES} aliases: refusing to expand them`)
  }
}

function convert(doc: Document, node: YamlNode | null, text: string, aliases: {count: number}, fallbackOff = 0): TreeNode {
  if (node === null || node === undefined) return {kind: 'scalar', off: fallbackOff, value: null, source: '', plain: true}
  const off = node.range?.[0] ?? fallbackOff
  if (isAlias(node)) {
    if (++aliases.count > MAX_ALIASES) throw new AliasLimit(off)
    const target = node.resolve(doc)
    return {...convert(doc, (target ?? null) as YamlNode | null, text, aliases, off), off}
  }
  if (isMap(node)) {
    const pairs: TreePair[] = []
    for (const pair of node.items) {
      if (!isPair(pair)) continue
      const keyNode = pair.key as YamlNode | null
      const keyOff = keyNode?.range?.[0] ?? off
      let key: string
      if (isScalar(keyNode)) key = keyNode.value === null ? '' : String(keyNode.value)
      else key = text.slice(keyOff, keyNode?.range?.[1] ?? keyOff)
      const valueOff = keyNode?.range?.[1] ?? keyOff
      pairs.push({key, keyOff, value: convert(doc, pair.value as YamlNode | null, text, aliases, valueOff)})
    }
    return {kind: 'map', off, pairs}
  }
  if (isSeq(node)) {
    return {kind: 'seq', off, items: node.items.map((item) => convert(doc, item as YamlNode | null, text, aliases, off))}
  }
  if (isScalar(node)) {
    const plain = node.type === 'PLAIN'
    const raw = node.value
    let value: TreeScalar['value']
    if (raw === null || raw === undefined) value = null
    else if (typeof raw === 'string' || typeof raw === 'number' || typeof raw === 'boolean') value = raw
    else value = String(raw)
    const source = node.range ? text.slice(node.range[0], node.range[1]) : String(raw ?? '')
    return {kind: 'scalar', off, value, source: plain ? source.trim() : source, plain}
  }
  return {kind: 'scalar', off, value: null, source: '', plain: true}
}
