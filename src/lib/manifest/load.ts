import {isUtf8} from 'node:buffer'
import {readFile} from 'node:fs/promises'
import path from 'node:path'

import {ManifestError, type ManifestProblem, UsageError} from '../errors.js'
import {parseTree} from './tree.js'
import type {Manifest} from './types.js'
import {validateTree} from './validate.js'

/**
 * Read, check and normalize a manifest. Throws UsageError when the file
 * cannot be read, ManifestError with every problem found (file:line:column,
 * field path, what was expected) when it is not a valid manifest v1.
 */
export async function loadManifest(file: string): Promise<Manifest> {
  return parseManifest(await readManifestFile(file), file)
}

/** The bytes of a manifest file; UsageError when it cannot be read. */
export async function readManifestFile(file: string): Promise<Buffer> {
  try {
    return await readFile(file)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new UsageError(`manifest not found: ${file}`)
    if (code === 'EISDIR') throw new UsageError(`manifest is a directory, not a file: ${file}`)
    if (code === 'EACCES' || code === 'EPERM')
      throw new UsageError(`manifest is not readable (permission denied): ${file}`)
    throw new UsageError(`cannot read manifest ${file}: ${(error as Error).message}`)
  }
}

/** The same checks on bytes already read; `file` names them in messages and anchors relative paths. */
export function parseManifest(bytes: Buffer, file: string): Manifest {
  const problem = (line: number, column: number, message: string, p = ''): ManifestError =>
    new ManifestError(file, [{file, line, column, path: p, message}])
  if (!isUtf8(bytes)) {
    const bad = firstInvalidUtf8(bytes)
    const {line, column} = bytePosition(bytes, bad)
    throw problem(
      line,
      column,
      `invalid UTF-8 (byte 0x${bytes[bad].toString(16).padStart(2, '0')} at offset ${bad}): save the manifest as UTF-8`,
    )
  }
  let text = bytes.toString('utf8')
  // A byte order mark is harmless; drop it so columns count from the first real character.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  if (text.trim() === '') {
    throw problem(1, 1, 'the manifest is empty: expected apiVersion, kind, metadata and spec')
  }
  const tree = parseTree(text)
  const at = tree.pos
  if (tree.errors.length > 0) {
    const problems = tree.errors.map((e): ManifestProblem => ({
      file,
      ...at(e.off),
      path: '',
      message: `YAML syntax error: ${e.message}`,
    }))
    throw new ManifestError(file, sortProblems(problems))
  }
  if (!tree.root)
    throw problem(1, 1, 'the manifest is empty (only comments): expected apiVersion, kind, metadata and spec')
  const dir = path.resolve(path.dirname(file))
  const {manifest, problems} = validateTree(tree.root, file, dir, at)
  if (problems.length > 0) {
    throw new ManifestError(
      file,
      sortProblems(problems.map((p): ManifestProblem => ({file, ...at(p.off), path: p.path, message: p.message}))),
    )
  }
  return manifest
}

function sortProblems(problems: ManifestProblem[]): ManifestProblem[] {
  return problems.sort((a, b) => a.line - b.line || a.column - b.column)
}

/** Offset of the first byte that does not start or continue a valid UTF-8 sequence. */
function firstInvalidUtf8(b: Buffer): number {
  let i = 0
  while (i < b.length) {
    const c = b[i]
    let n: number
    let min: number
    if (c < 0x80) {
      i++
      continue
    } else if (c >= 0xc2 && c <= 0xdf) {
      n = 1
      min = 0x80
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2
      min = 0x800
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3
      min = 0x10000
    } else {
      return i
    }
    if (i + n >= b.length) return i
    let cp = c & (0x3f >> n)
    for (let k = 1; k <= n; k++) {
      const cc = b[i + k]
      if (cc === undefined || (cc & 0xc0) !== 0x80) return i
      cp = (cp << 6) | (cc & 0x3f)
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i
    i += n + 1
  }
  return b.length - 1
}

/** Line and column (in characters) of a byte offset; the bytes before it are valid UTF-8. */
function bytePosition(b: Buffer, off: number): {line: number; column: number} {
  let line = 1
  let lineStart = 0
  for (let i = 0; i < off; i++) {
    if (b[i] === 0x0a) {
      line++
      lineStart = i + 1
    }
  }
  return {line, column: b.subarray(lineStart, off).toString('utf8').length + 1}
}
