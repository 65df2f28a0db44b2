import {readFile, stat} from 'node:fs/promises'
import {isDeepStrictEqual} from 'node:util'

import {Document, isMap, isScalar, parseAllDocuments, type ToStringOptions, YAMLMap} from 'yaml'

import {UsageError} from '../errors.js'
import {writeFileAtomic} from '../store/atomic.js'
import {detectStyle} from '../yaml-style.js'

/** Where the cluster's installer should fetch binaries from after an import. */
export interface BinariesEndpoint {
  endpoint: string
  /** Written only when the user asked for credentials in the file. */
  username?: string
  password?: string
}

function specMap(doc: Document): YAMLMap | undefined {
  const spec = isMap(doc.contents) ? doc.contents.get('spec', true) : undefined
  return isMap(spec) ? spec : undefined
}

function wanted(target: BinariesEndpoint): [string, string][] {
  const want: [string, string][] = [
    ['type', 'external'],
    ['externalRepoEndpoint', target.endpoint],
  ]
  if (target.username !== undefined) want.push(['externalRepoUsername', target.username])
  if (target.password !== undefined) want.push(['externalRepoPassword', target.password])
  return want
}

/** A scalar as YAML would write it (quoted only when it must be). */
function scalar(v: string): string {
  return new Document(v).toString({lineWidth: 0}).trimEnd()
}

function column(text: string, offset: number): number {
  return offset - (text.lastIndexOf('\n', offset - 1) + 1)
}

/** Back off over trailing blanks and newlines, so replacements keep the original line ends. */
function trimEnd(text: string, end: number): number {
  while (end > 0 && /\s/.test(text[end - 1])) end--
  return end
}

/**
 * Splice the new binaries block into the original text, so that every byte
 * outside it stays as it was (re-serialising a document would respace
 * comments and flow collections). Returns undefined when the layout is
 * not one it handles (a flow-style spec), for the caller to fall back.
 */
function splice(text: string, spec: YAMLMap, want: [string, string][]): string | undefined {
  if (spec.flow || !spec.range || spec.items.length === 0) return undefined
  const firstKey = spec.items[0].key as {range?: [number, number, number]}
  if (!firstKey?.range) return undefined
  const ind = column(text, firstKey.range[0])
  const step = detectStyle(text).indent ?? 2
  const pair = spec.items.find((p) => isScalar(p.key) && p.key.value === 'binaries')
  const lines = (at: number, comments: Map<string, string> = new Map()) =>
    want.map(([k, v]) => `${' '.repeat(at)}${k}: ${scalar(v)}${comments.get(k) ?? ''}`)
  if (pair) {
    const value = pair.value as {range?: [number, number, number]; flow?: boolean} | null
    const key = pair.key as {range?: [number, number, number]}
    if (isMap(value) && !value.flow && value.range && value.items.length > 0) {
      const at = column(text, value.range[0])
      const end = trimEnd(text, value.range[1])
      return (
        text.slice(0, value.range[0]) + lines(at, inlineComments(text, value)).join('\n').slice(at) + text.slice(end)
      )
    }
    if (value && value.range) {
      // `binaries: internet` or a flow map: the block goes on the lines below the key.
      const keyCol = column(text, key.range![0])
      const end = trimEnd(text, value.range[1])
      const colon = text.lastIndexOf(':', value.range[0])
      return text.slice(0, colon + 1) + `\n${lines(keyCol + step).join('\n')}` + text.slice(end)
    }
    return undefined
  }
  // No binaries yet: a new key after the last one of spec, at the end of that line.
  const last = spec.items[spec.items.length - 1]
  const lastEnd =
    (last.value as {range?: [number, number, number]} | null)?.range?.[1] ??
    (last.key as {range?: [number, number, number]}).range?.[1]
  if (lastEnd === undefined) return undefined
  const nl = text.indexOf('\n', trimEnd(text, lastEnd))
  const block = [`${' '.repeat(ind)}binaries:`, ...lines(ind + step)].join('\n')
  return nl === -1 ? `${text}\n${block}\n` : `${text.slice(0, nl + 1)}${block}\n${text.slice(nl + 1)}`
}

/**
 * The comment at the end of each key's line in a block map (`type: builtin   # why`),
 * with the spacing before it, so a replaced value keeps the note the user wrote beside it.
 */
function inlineComments(text: string, map: YAMLMap): Map<string, string> {
  const out = new Map<string, string>()
  for (const p of map.items) {
    const valueEnd =
      (p.value as {range?: [number, number, number]} | null)?.range?.[1] ??
      (p.key as {range?: [number, number, number]} | null)?.range?.[1]
    if (!isScalar(p.key) || valueEnd === undefined) continue
    const eol = text.indexOf('\n', valueEnd)
    const rest = /^([ \t]+#.*?)\r?$/.exec(text.slice(valueEnd, eol === -1 ? undefined : eol))
    if (rest) out.set(String(p.key.value), rest[1])
  }
  return out
}

/** A clusterConfig.yaml read and checked up front, so an import does not start when the file is unusable. */
export interface ClusterConfigFile {
  file: string
  /** Point spec.binaries at the target and write the file atomically. */
  point(target: BinariesEndpoint): Promise<void>
}

/** An externalRepoEndpoint must be an http(s) URL with a host; `flag` names where it came from. */
export function checkRepoEndpoint(flag: string, url: string): void {
  if (!/^https?:\/\/[^/]/.test(url)) throw new UsageError(`${flag} ${url} is not an http(s) URL`)
}

/**
 * Read and check a clusterConfig.yaml (exists, valid YAML, has a `spec`
 * map); a missing or unusable file is a usage error (exit 2). Its `point`
 * sets `spec.binaries` to `{type: external, externalRepoEndpoint: URL}`
 * (plus the repository credentials when given), keeping every other line
 * and comment byte for byte: the new block is spliced into the text at the
 * ranges the yaml parser reports, and the result is parsed again to check
 * that only spec.binaries changed (else the yaml document API writes it,
 * which keeps comments and key order but may respace). Written atomically
 * with the file's own mode.
 */
export async function openClusterConfig(file: string): Promise<ClusterConfigFile> {
  let text: string
  let mode: number
  try {
    text = await readFile(file, 'utf8')
    mode = (await stat(file)).mode & 0o777
  } catch (err) {
    throw new UsageError(
      `--cluster-config ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
    )
  }
  const docs = parseAllDocuments(text)
  if (!Array.isArray(docs) || docs.length === 0)
    throw new UsageError(`--cluster-config ${file}: the file is empty; it needs a spec`)
  const broken = docs.flatMap((d) => d.errors)
  if (broken.length > 0) {
    throw new UsageError(`--cluster-config ${file}: not valid YAML`, {
      details: broken.slice(0, 5).map((e) => e.message),
    })
  }
  const index = docs.findIndex((d) => specMap(d))
  if (index === -1) throw new UsageError(`--cluster-config ${file}: no spec map found; is this a clusterConfig.yaml?`)
  return {
    file,
    point: async (target) => {
      const doc = docs[index]
      const want = wanted(target)
      const expected = docs.map((d) => d.toJS())
      expected[index].spec.binaries = Object.fromEntries(want)
      let out = splice(text, specMap(doc)!, want)
      if (out !== undefined) {
        const again = parseAllDocuments(out)
        const same =
          Array.isArray(again) &&
          again.every((d) => d.errors.length === 0) &&
          isDeepStrictEqual(
            again.map((d) => d.toJS()),
            expected,
          )
        if (!same) out = undefined
      }
      out ??= rewrite(text, docs, doc, want)
      await writeFileAtomic(file, out, mode)
    },
  }
}

/** The fallback: edit the parsed tree and serialise it in the file's indentation. */
function rewrite(text: string, docs: Document[], doc: Document, want: [string, string][]): string {
  const spec = specMap(doc)!
  const current = spec.get('binaries', true)
  if (isMap(current) && !current.flow) {
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
  return docs.map((d) => d.toString(opts)).join('')
}
