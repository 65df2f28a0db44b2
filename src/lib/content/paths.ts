/**
 * The one test of a relative path that must stay inside the folder it is
 * joined to: a mirrored path in a manifest or bundle.json, a tar entry's
 * name (its top folder included), a served URL's path, a path in the store.
 * What it refuses cannot name anything outside: an empty name, an absolute
 * path, `..`, an empty or `.` segment (two spellings of one file), a NUL
 * (C calls cut the name there), a backslash (a separator elsewhere), a
 * segment longer than a file name may be. Links and special files are the
 * filesystem's side: refused by the archive reader (entry types) and the web
 * root sink (what is on disk).
 */

/** The most bytes one segment may have: NAME_MAX. */
export const MAX_SEGMENT_BYTES = 255

/** Why `p` is not a safe relative `/`-separated path, or undefined when it is. */
export function relativePathProblem(p: string): string | undefined {
  if (p === '') return 'empty path'
  if (p.includes('\0')) return 'name contains a NUL byte'
  if (p.startsWith('/')) return 'absolute path'
  if (p.includes('\\')) return 'path contains a backslash (separate folders with /)'
  for (const s of p.split('/')) {
    if (s === '..') return 'path goes up with ..'
    if (s === '' || s === '.') return 'path has an empty or . segment'
    const bytes = Buffer.byteLength(s)
    if (bytes > MAX_SEGMENT_BYTES) return `a path segment of ${bytes} bytes`
  }
  return undefined
}

export function isSafeRelativePath(p: string): boolean {
  return relativePathProblem(p) === undefined
}

/**
 * Paths that another path needs as a folder (`a/b` beside `a/b/c`): no
 * folder can hold both. Each clash as `[file, under]`, indexes into
 * `paths`: a path, and the nearest path above it that is there too. Equal
 * paths do not clash (of several equal ones, the last stands for them).
 * Sorted with `/` as the lowest character, every `F/...` comes right after
 * `F`, so one pass with a stack of ancestors finds them all without
 * building every folder prefix.
 */
export function folderClashes(paths: readonly string[]): [file: number, under: number][] {
  const keys = paths.map((p) => p.replaceAll('/', '\u0000'))
  const order = paths.map((_, i) => i).sort((a, b) => (keys[a] < keys[b] ? -1 : keys[a] > keys[b] ? 1 : a - b))
  const clashes: [number, number][] = []
  const ancestors: number[] = []
  for (const i of order) {
    while (ancestors.length > 0 && !paths[i].startsWith(`${paths[ancestors.at(-1)!]}/`)) ancestors.pop()
    const file = ancestors.at(-1)
    if (file !== undefined) clashes.push([file, i])
    ancestors.push(i)
  }
  return clashes
}
