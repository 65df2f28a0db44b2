import type {Got} from 'got'

import {FailureError} from '../errors.js'
import {redactUrl} from './http.js'
import type {RetryPolicy} from './retry.js'
import {fetchSmall} from './small.js'

/** Checksum files are a few lines; anything bigger is not one. */
const MAX_CHECKSUM_FILE = 1024 * 1024

export interface ChecksumLine {
  /** Lowercase hex. */
  sha256: string
  /** The file name the line gives, if any (`sha256sum` without a name, as dl.k8s.io's `.sha256`, gives none). */
  name?: string
}

// GNU coreutils: `<hex>  name` (text mode) or `<hex> *name` (binary mode); a leading `\` marks an escaped name.
const GNU_LINE = /^\\?([0-9a-fA-F]{64})(?:[ \t]+[*]?(.*?))?\s*$/
// BSD / `sha256sum --tag`: `SHA256 (name) = <hex>`.
const BSD_LINE = /^SHA256 \((.*)\) = ([0-9a-fA-F]{64})\s*$/

/** The checksum lines of a `sha256sum` style file; blank lines and `#` comments skipped. */
export function parseChecksumLines(text: string): {lines: ChecksumLine[]; bad: string[]} {
  const lines: ChecksumLine[] = []
  const bad: string[] = []
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const gnu = GNU_LINE.exec(line)
    if (gnu) {
      lines.push({sha256: gnu[1].toLowerCase(), ...(gnu[2] ? {name: gnu[2]} : {})})
      continue
    }
    const bsd = BSD_LINE.exec(line)
    if (bsd) {
      lines.push({sha256: bsd[2].toLowerCase(), name: bsd[1]})
      continue
    }
    bad.push(line)
  }
  return {lines, bad}
}

/** The last path segment of a URL, percent-decoded: the name a checksum line gives the file. */
export function urlFileName(url: string): string {
  const seg = new URL(url).pathname.split('/').pop() ?? ''
  try {
    return decodeURIComponent(seg)
  } catch {
    return seg
  }
}

function baseName(name: string): string {
  return name.replace(/^\.\//, '').split('/').pop() ?? name
}

/**
 * The sha256 a checksum file gives `fileName`: its only line, or the line
 * naming that file (exactly, or as the last part of a path). `source` names
 * the checksum file in errors.
 */
export function checksumFor(text: string, fileName: string, source: string): string {
  const {lines, bad} = parseChecksumLines(text)
  if (lines.length === 0) {
    const why = bad.length > 0 ? `its first line is "${truncate(bad[0])}"` : 'it is empty'
    throw new FailureError(`checksum file ${source} has no sha256 line: ${why}`, {
      suggestions: ['checksumUrl must name a sha256sum style file ("<64 hex>  <file name>"); or give sha256 inline'],
    })
  }
  if (lines.length === 1) return lines[0].sha256
  let hits = lines.filter((l) => l.name === fileName)
  if (hits.length === 0) hits = lines.filter((l) => l.name !== undefined && baseName(l.name) === fileName)
  const found = new Set(hits.map((l) => l.sha256))
  if (found.size === 1) return hits[0].sha256
  if (found.size > 1) {
    throw new FailureError(`checksum file ${source} gives ${found.size} different sha256 values for ${fileName}`)
  }
  const names = lines.map((l) => l.name ?? '(no name)')
  throw new FailureError(`checksum file ${source} has ${lines.length} lines and none names ${fileName}`, {
    details: [
      `it names: ${names.slice(0, 10).join(', ')}${names.length > 10 ? `, and ${names.length - 10} more` : ''}`,
    ],
  })
}

/**
 * Checksum files of one run: each fetched once (a SHA256SUMS names many
 * files), with the same retries, proxies and CAs as downloads.
 */
export class ChecksumFiles {
  private readonly texts = new Map<string, Promise<string>>()

  constructor(private readonly opts: {http: Got; policy?: RetryPolicy; signal?: AbortSignal}) {}

  /** The sha256 (hex) that `checksumUrl` gives the file of `fileUrl`. */
  async sha256For(checksumUrl: string, fileUrl: string): Promise<string> {
    const source = redactUrl(checksumUrl)
    let text = this.texts.get(checksumUrl)
    if (!text) {
      text = fetchSmall(this.opts.http, checksumUrl, {
        what: `checksum file ${source}`,
        maxBytes: MAX_CHECKSUM_FILE,
        policy: this.opts.policy,
        signal: this.opts.signal,
      }).then((b) => b.toString('utf8'))
      // Entries naming the same checksum file share its one fetch, and its failure.
      this.texts.set(checksumUrl, text)
    }
    return checksumFor(await text, urlFileName(fileUrl), source)
  }
}

function truncate(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s
}
