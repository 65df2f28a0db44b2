import {isMap, isScalar, isSeq, type Node, Pair, parseDocument, Scalar, YAMLMap, YAMLSeq} from 'yaml'

import {formatReference, parseReference, ReferenceError} from '../oci/reference.js'
import {writeOptions} from '../yaml-style.js'

/** What a lock found: the digest of every tag, and what each selection resolved to. */
export interface LockEdits {
  /** Digest of each image named by tag, keyed by its normalized name without digest (`docker.io/library/nginx:1.25.3`). */
  digests: Map<string, string>
  /**
   * What each selection became, keyed by its field (`spec.images[2]`,
   * `spec.repositories[0]`): full references `host/repo:tag@sha256:...`, in
   * order. A selection whose tags all have an entry of their own already
   * maps to an empty list.
   */
  expansions: Map<string, string[]>
  /**
   * The sha256 (hex) a checksum file gave each binary or package named with
   * `checksumUrl` and no `sha256`, keyed by its `url` as written. Each gets
   * `sha256:` beside its `checksumUrl` (kept, for reference).
   */
  checksums?: Map<string, string>
}

/**
 * The manifest text, locked: every image entry named by tag gets its digest
 * (in the form and spelling it was written in), every `images` entry with
 * `repository` and `tags` becomes one object entry `ref: host/repo:tag@digest`
 * per selected tag (its other fields, such as `platforms`, kept on each), and
 * every `spec.repositories` entry becomes such entries at the end of
 * `images`. Comments and key order are kept: the `yaml` document API gives
 * each node's range and the text is edited there, so every line the lock
 * does not change stays byte for byte (flow-style lists are written by the
 * document API instead). Every binary and package named by `checksumUrl`
 * gets the `sha256:` its checksum file gave, on the line after it. The selection each group came from is written as
 * a comment above it, so the lock stays reviewable. Returns the text
 * unchanged when there is nothing to pin: locking a locked manifest changes
 * nothing.
 */
export function writeLocked(text: string, edits: LockEdits): {text: string; changed: boolean} {
  const doc = parseDocument(text)
  const spec = doc.get('spec', true)
  if (!isMap(spec)) return {text, changed: false}
  const spliced = splice(text, spec, edits)
  if (spliced !== undefined) return {text: spliced, changed: spliced !== text}
  return rewrite(text, doc, spec, edits)
}

type Range = [number, number, number]

interface Edit {
  start: number
  end: number
  insert: string
}

/**
 * The lock as edits of the text at the ranges the parser reports, so that
 * every line the lock does not change stays byte for byte as it was (the
 * document API would respace comments). New entries copy the source text of
 * the fields they keep. Undefined for layouts it does not handle (flow
 * collections), which the document API then writes.
 */
function splice(text: string, spec: YAMLMap, edits: LockEdits): string | undefined {
  const out: Edit[] = []
  const images = spec.get('images', true)
  let imagesStyle: {dashCol: number; keyCol: number; end: number} | undefined
  if (images !== undefined && images !== null) {
    if (!isSeq(images) || images.flow || !images.range) return undefined
    for (const [i, item] of images.items.entries()) {
      if (isMap(item) && item.has('repository')) {
        if (item.flow || !item.range) return undefined
        const at = itemStart(text, item.range[0])
        if (!at) return undefined
        const refs = edits.expansions.get(`spec.images[${i}]`) ?? []
        const note = `locked from ${flowText(item, ['repository', 'tags'])}${trailing(item)}`
        out.push({
          start: at.lineStart,
          end: item.range[2],
          insert: entriesText(text, refs, item, {
            drop: ['repository', 'tags'],
            dashCol: at.dashCol,
            keyCol: at.keyCol,
            notes: [note],
          }),
        })
        continue
      }
      const e = pinEdit(item, edits.digests)
      if (e === null) return undefined
      if (e) out.push(e)
    }
    const first = images.items.find((x) => isMap(x) || isScalar(x)) as {range?: Range} | undefined
    const at = first?.range ? itemStart(text, first.range[0]) : undefined
    if (at) imagesStyle = {...at, keyCol: at.dashCol + 2, end: images.range[2]}
  }
  const pairIndex = spec.items.findIndex((p) => isScalar(p.key) && p.key.value === 'repositories')
  if (pairIndex !== -1) {
    const pair = spec.items[pairIndex]
    const key = pair.key as Scalar
    const repos = pair.value
    if (!isSeq(repos) || repos.flow || !repos.range || !key.range) return undefined
    const keyLine = lineStart(text, key.range[0])
    // The comment lines right above `repositories:` go with what it becomes.
    let blockStart = keyLine
    const carried: string[] = []
    while (blockStart > 0) {
      const prev = lineStart(text, blockStart - 1)
      const line = text.slice(prev, blockStart - 1)
      if (!line.trim().startsWith('#')) break
      carried.unshift(line.trim().replace(/^#\s?/, ''))
      blockStart = prev
    }
    let generated = ''
    let style: {dashCol: number; keyCol: number} | undefined = imagesStyle
    let from = keyLine
    for (const [j, item] of repos.items.entries()) {
      if (!isMap(item) || item.flow || !item.range) return undefined
      const at = itemStart(text, item.range[0])
      if (!at) return undefined
      style ??= at
      // Comment lines between the previous entry and this one.
      const between = text
        .slice(from, at.lineStart)
        .split('\n')
        .slice(j === 0 ? 1 : 0)
        .map((l) => l.trim())
        .filter((l) => l.startsWith('#'))
        .map((l) => l.replace(/^#\s?/, ''))
      from = item.range[2]
      const notes = [
        ...(j === 0 ? carried : []),
        ...(j === 0 && key.comment ? [key.comment.trim()] : []),
        ...between,
        `locked from repositories: ${flowText(item, ['registry', 'include', 'exclude', 'tags'])}${trailing(item)}`,
      ]
      const refs = edits.expansions.get(`spec.repositories[${j}]`) ?? []
      generated += entriesText(text, refs, item, {
        drop: ['registry', 'include', 'exclude', 'tags'],
        dashCol: style.dashCol,
        keyCol: style.keyCol,
        notes: refs.length > 0 ? notes : [],
        fromKeyCol: at.keyCol,
      })
    }
    const blockEnd = repos.range[2]
    if (imagesStyle) {
      out.push({start: blockStart, end: blockEnd, insert: ''})
      const end = imagesStyle.end
      out.push({start: end, end, insert: (end > 0 && text[end - 1] !== '\n' ? '\n' : '') + generated})
    } else if (images === undefined || images === null) {
      const keyCol = key.range[0] - keyLine
      out.push({
        start: blockStart,
        end: blockEnd,
        insert: `${' '.repeat(keyCol)}images:
${generated}`,
      })
    } else return undefined
  }
  for (const key of ['binaries', 'packages']) {
    const seq = spec.get(key, true)
    if (seq === undefined || seq === null || !isSeq(seq)) continue
    for (const item of seq.items) {
      const e = checksumEdit(text, item, edits.checksums)
      if (e === null) return undefined
      if (e) out.push(e)
    }
  }
  // Apply from the end, so earlier offsets stay valid.
  out.sort((a, b) => b.start - a.start || b.end - a.end)
  let result = text
  for (const e of out) result = result.slice(0, e.start) + e.insert + result.slice(e.end)
  return result
}

/** The sha256 a file entry named by checksumUrl alone is pinned to, or undefined. */
function checksumPin(item: unknown, checksums: Map<string, string> | undefined): string | undefined {
  if (!checksums || !isMap(item) || item.has('sha256') || !item.has('checksumUrl')) return undefined
  const url = item.get('url')
  return typeof url === 'string' ? checksums.get(url) : undefined
}

/**
 * `sha256: HEX` on its own line after the `checksumUrl` line, at its column:
 * undefined when there is nothing to pin, null for a layout this does not edit.
 */
function checksumEdit(
  text: string,
  item: unknown,
  checksums: Map<string, string> | undefined,
): Edit | undefined | null {
  const hex = checksumPin(item, checksums)
  if (!hex) return undefined
  const map = item as YAMLMap
  const pair = map.items.find((p) => isScalar(p.key) && p.key.value === 'checksumUrl')
  const key = pair?.key as Scalar | undefined
  const value = pair?.value as Scalar | undefined
  if (map.flow || !key?.range || !value?.range) return null
  const col = key.range[0] - lineStart(text, key.range[0])
  const nl = text.indexOf('\n', value.range[1])
  if (nl === -1) return {start: text.length, end: text.length, insert: `\n${' '.repeat(col)}sha256: ${hex}\n`}
  return {start: nl + 1, end: nl + 1, insert: `${' '.repeat(col)}sha256: ${hex}\n`}
}

/** Where a block sequence item starts: its line, the column of its `-` and of its content. */
function itemStart(
  text: string,
  contentStart: number,
): {lineStart: number; dashCol: number; keyCol: number} | undefined {
  const ls = lineStart(text, contentStart)
  const m = /^( *)-( +)/.exec(text.slice(ls, contentStart))
  if (!m || m[0].length !== contentStart - ls) return undefined
  return {lineStart: ls, dashCol: m[1].length, keyCol: contentStart - ls}
}

function lineStart(text: string, off: number): number {
  return text.lastIndexOf('\n', off - 1) + 1
}

/**
 * The pin of one entry as an edit: `@digest` after a plain scalar, before
 * the closing quote of a quoted one. undefined when there is nothing to pin,
 * null when the entry is written in a way this does not edit.
 */
function pinEdit(item: unknown, digests: Map<string, string>): Edit | undefined | null {
  const node = isScalar(item) ? item : isMap(item) ? item.get('ref', true) : undefined
  if (!isScalar(node) || typeof node.value !== 'string') return undefined
  const add = pinSuffix(node.value, digests)
  if (!add) return undefined
  const r = node.range
  if (!r) return null
  if (node.type === 'PLAIN') return {start: r[1], end: r[1], insert: add}
  if (node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE') return {start: r[1] - 1, end: r[1] - 1, insert: add}
  return null
}

/** What a tag reference needs appended to be pinned (`@sha256:...`, after `:latest` when it names no tag), or undefined. */
function pinSuffix(written: string, digests: Map<string, string>): string | undefined {
  let ref
  try {
    ref = parseReference(written)
  } catch (error) {
    if (error instanceof ReferenceError) return undefined
    throw error
  }
  if (ref.digest) return undefined
  const digest = digests.get(formatReference(ref))
  if (!digest) return undefined
  // `nginx` means `nginx:latest`; `nginx@sha256:...` would lose the tag.
  const hasTag = written.lastIndexOf(':') > written.lastIndexOf('/')
  return `${hasTag ? '' : ':latest'}@${digest}`
}

/** How entriesText writes: the fields of `from` left out, the columns of the dash and the keys (and of `from`'s keys), the comment lines. */
interface EntriesLayout {
  drop: string[]
  dashCol: number
  keyCol: number
  notes: string[]
  fromKeyCol?: number
}

/**
 * Block entries `- ref: REF` with the kept fields of `from` copied as
 * written (re-indented from `fromKeyCol` to `keyCol`), and comment lines
 * above the first one.
 */
function entriesText(text: string, refs: string[], from: YAMLMap, layout: EntriesLayout): string {
  const {drop, dashCol, keyCol, notes, fromKeyCol = keyCol} = layout
  if (refs.length === 0) return ''
  const kept: string[] = []
  for (const p of from.items) {
    const key = p.key as Scalar
    const value = p.value as {range?: Range} | null
    if (!isScalar(key) || drop.includes(String(key.value)) || !key.range) continue
    const end = value?.range ? trimEnd(text, value.range[2]) : key.range[1]
    kept.push(reindent(text.slice(key.range[0], end), keyCol - fromKeyCol))
  }
  const pad = ' '.repeat(dashCol)
  let s = notes.map((n) => `${pad}# ${n}\n`).join('')
  for (const ref of refs) {
    s += `${pad}-${' '.repeat(Math.max(1, keyCol - dashCol - 1))}ref: ${ref}\n`
    for (const k of kept) s += `${' '.repeat(keyCol)}${k}\n`
  }
  return s
}

/** Shift every line but the first by `delta` columns. */
function reindent(block: string, delta: number): string {
  if (delta === 0) return block
  return block
    .split('\n')
    .map((line, i) =>
      i === 0 || line.trim() === ''
        ? line
        : delta > 0
          ? ' '.repeat(delta) + line
          : line.replace(new RegExp(`^ {0,${-delta}}`), ''),
    )
    .join('\n')
}

/** Back off over trailing blanks and newlines. */
function trimEnd(text: string, end: number): number {
  while (end > 0 && /\s/.test(text[end - 1])) end--
  return end
}

/** The fallback: edit the parsed tree and write it in the file's indentation (comments kept, some spacing not). */
function rewrite(
  text: string,
  doc: ReturnType<typeof parseDocument>,
  spec: YAMLMap,
  edits: LockEdits,
): {text: string; changed: boolean} {
  let changed = false
  const images: unknown = spec.get('images', true)
  if (isSeq(images)) {
    const items: unknown[] = []
    images.items.forEach((item, i) => {
      if (isMap(item) && item.has('repository')) {
        items.push(...expandSelection(item, edits.expansions.get(`spec.images[${i}]`) ?? [], !(images as YAMLSeq).flow))
        changed = true
        return
      }
      if (pin(item, edits.digests)) changed = true
      items.push(item)
    })
    images.items = items
  }
  const repos = spec.get('repositories', true)
  if (isSeq(repos)) {
    const added: YAMLMap[] = []
    repos.items.forEach((item, j) => {
      if (!isMap(item)) return
      const refs = edits.expansions.get(`spec.repositories[${j}]`) ?? []
      const entries = refs.map((ref) => entryFor(ref, item, ['registry', 'include', 'exclude', 'tags']))
      if (entries.length > 0) {
        entries[0].commentBefore = joinComments(
          item.commentBefore,
          j === 0 ? repos.commentBefore : undefined,
          ` locked from repositories: ${flowText(item, ['registry', 'include', 'exclude', 'tags'])}${trailing(item)}`,
        )
      }
      added.push(...entries)
    })
    const pairIndex = spec.items.findIndex((p) => isScalar(p.key) && p.key.value === 'repositories')
    const pair = spec.items[pairIndex]
    const keyComment = isScalar(pair.key) ? pair.key.commentBefore : undefined
    if (added.length > 0) added[0].commentBefore = joinComments(keyComment, added[0].commentBefore)
    if (isSeq(images)) {
      images.items.push(...added)
      spec.items.splice(pairIndex, 1)
    } else {
      // No images list yet: it takes the place of repositories.
      const seq = new YAMLSeq()
      seq.items = added
      spec.items.splice(pairIndex, 1, new Pair(new Scalar('images'), seq))
    }
    changed = true
  }
  for (const key of ['binaries', 'packages']) {
    const seq = spec.get(key, true)
    if (!isSeq(seq)) continue
    for (const item of seq.items) {
      const hex = checksumPin(item, edits.checksums)
      if (!hex) continue
      ;(item as YAMLMap).set('sha256', hex)
      changed = true
    }
  }
  if (!changed) return {text, changed: false}
  return {text: doc.toString(writeOptions(text)), changed: true}
}

/** Add the digest to an entry named by tag; false when it has one already or is not an image reference. */
function pin(item: unknown, digests: Map<string, string>): boolean {
  const node = isScalar(item) ? item : isMap(item) ? item.get('ref', true) : undefined
  if (!isScalar(node) || typeof node.value !== 'string') return false
  const add = pinSuffix(node.value, digests)
  if (!add) return false
  node.value = `${node.value}${add}`
  return true
}

/** One `images` entry per selected tag, in place of the selection. */
function expandSelection(item: YAMLMap, refs: string[], note: boolean): YAMLMap[] {
  const entries = refs.map((ref) => entryFor(ref, item, ['repository', 'tags']))
  if (entries.length > 0 && note) {
    entries[0].spaceBefore = item.spaceBefore
    entries[0].commentBefore = joinComments(
      item.commentBefore,
      ` locked from ${flowText(item, ['repository', 'tags'])}${trailing(item)}`,
    )
  }
  return entries
}

/** `{ref, ...the other fields of the selection}`, ref first. */
function entryFor(ref: string, from: YAMLMap, drop: string[]): YAMLMap {
  const map = new YAMLMap()
  map.items.push(new Pair(new Scalar('ref'), new Scalar(ref)))
  for (const p of from.items) {
    const key = isScalar(p.key) ? String(p.key.value) : undefined
    if (key === undefined || drop.includes(key)) continue
    const value = p.value as Node | null
    const copy = value && typeof (value as {clone?: unknown}).clone === 'function' ? (value as YAMLMap).clone() : value
    map.items.push(new Pair(new Scalar(key), copy))
  }
  return map
}

/** The named fields of a selection on one line: `repository: r/app, tags: {latest: 2}`. */
function flowText(item: YAMLMap, keys: string[]): string {
  const parts: string[] = []
  for (const k of keys) {
    const v = item.get(k, true) as Node | undefined
    if (v === undefined) continue
    const copy =
      typeof (v as {clone?: unknown}).clone === 'function'
        ? ((v as YAMLMap).clone() as Node & {flow?: boolean; comment?: string | null})
        : v
    if (isMap(copy) || isSeq(copy)) copy.flow = true
    ;(copy as {comment?: string | null}).comment = null
    const doc = parseDocument('x')
    doc.contents = copy as never
    parts.push(`${k}: ${doc.toString({lineWidth: 0, flowCollectionPadding: false}).trim()}`)
  }
  return parts.join(', ')
}

/** A trailing comment on the selection's fields, carried into the note. */
function trailing(item: YAMLMap): string {
  const notes = item.items
    .map((p) => (p.value as {comment?: string | null} | null)?.comment?.trim())
    .filter((c): c is string => Boolean(c))
  return notes.length > 0 ? ` (${notes.join('; ')})` : ''
}

function joinComments(...parts: (string | null | undefined)[]): string | undefined {
  const kept = parts.filter((p): p is string => typeof p === 'string' && p !== '')
  if (kept.length === 0) return undefined
  return kept.join('\n')
}
