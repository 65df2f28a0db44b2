import {readFile, stat} from 'node:fs/promises'
import {type Document, isMap, isScalar, parseAllDocuments, type ToStringOptions, YAMLMap} from 'yaml'

import {UsageError} from './errors.js'
import {writeFileAtomic} from './store/atomic.js'

/** Where the cluster's installer should fetch binaries from after an import. */
export interface BinariesEndpoint {
  endpoint: string
  /** Written only when the user asked for credentials in the file. */
  username?: string
  password?: string
}

/**
 * The indentation the file already uses, so that re-serialising leaves its
 * untouched lines byte for byte as they were.
 */
export function detectStyle(text: string): Pick<ToStringOptions, 'indent' | 'indentSeq'> {
  const lines = text.split('\n').filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'))
  let indent: number | undefined
  let indentSeq: boolean | undefined
  for (let i = 0; i < lines.length - 1; i++) {
    const here = /^( *)(.*)$/.exec(lines[i])!
    const next = /^( *)(.*)$/.exec(lines[i + 1])!
    if (!/:\s*(#.*)?$/.test(here[2])) continue
    const d = next[1].length - here[1].length
    if (next[2].startsWith('- ') || next[2] === '-') {
      indentSeq ??= d > 0
    } else if (d > 0) {
      indent ??= d
    }
  }
  return {indent: indent ?? 2, indentSeq: indentSeq ?? true}
}

function specMap(doc: Document): YAMLMap | undefined {
  const spec = isMap(doc.contents) ? doc.contents.get('spec', true) : undefined
  return isMap(spec) ? spec : undefined
}

/**
 * Point `spec.binaries` of a clusterConfig.yaml at the imported files:
 * `{type: external, externalRepoEndpoint: URL}` (plus the repository
 * credentials when given). Every other line, comment and key order is kept
 * (the yaml document API edits the parsed tree, not a re-dump of the data);
 * keys of an existing `binaries` map keep their place and comments. Written
 * atomically with the file's own mode.
 */
export async function pointClusterConfig(file: string, target: BinariesEndpoint): Promise<void> {
  let text: string
  let mode: number
  try {
    text = await readFile(file, 'utf8')
    mode = (await stat(file)).mode & 0o777
  } catch (err) {
    throw new UsageError(`--cluster-config ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`)
  }
  const docs = parseAllDocuments(text, {keepSourceTokens: false})
  if (!Array.isArray(docs)) throw new UsageError(`--cluster-config ${file}: the file is empty; it needs a spec`)
  const broken = docs.flatMap((d) => d.errors)
  if (broken.length > 0) {
    throw new UsageError(`--cluster-config ${file}: not valid YAML`, {details: broken.slice(0, 5).map((e) => e.message)})
  }
  const doc = docs.find((d) => specMap(d))
  if (!doc) throw new UsageError(`--cluster-config ${file}: no spec map found; is this a clusterConfig.yaml?`)
  const spec = specMap(doc)!
  const want: [string, string][] = [
    ['type', 'external'],
    ['externalRepoEndpoint', target.endpoint],
  ]
  if (target.username !== undefined) want.push(['externalRepoUsername', target.username])
  if (target.password !== undefined) want.push(['externalRepoPassword', target.password])

  const current = spec.get('binaries', true)
  if (isMap(current) && !current.flow) {
    // Edit in place: existing keys keep their position and comments, others go.
    const keep = new Set(want.map(([k]) => k))
    for (const pair of [...current.items]) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key)
      if (!keep.has(key)) current.delete(pair.key)
    }
    for (const [k, v] of want) current.set(k, v)
  } else {
    const map = new YAMLMap()
    for (const [k, v] of want) map.set(k, v)
    spec.set('binaries', map)
  }
  const opts: ToStringOptions = {...detectStyle(text), lineWidth: 0}
  const out = docs.map((d) => d.toString(opts)).join('')
  await writeFileAtomic(file, out, mode)
}
