/** The files of a bundle folder (the lock's shape is in ../../bundle-json.ts). */
export const BUNDLE_FILES = {
  files: 'offline-files.tar.gz',
  packages: 'component-tools.tar.gz',
  images: 'offline-images.tar',
  lock: 'bundle.json',
  sums: 'SHA256SUMS',
} as const

/** The importer a bundle carries beside its archives (bundle.json `tools`). */
export const IMPORT_SCRIPT = 'import.sh'

/** File name of the standalone executable for `linux/<arch>`. */
export function executableName(arch: string): string {
  return `airlock-linux-${arch}`
}

/** A name writeBundle may have put there as a tool: a stale one is removed when the bundle is written again without it. */
export function isToolName(name: string): boolean {
  return name === IMPORT_SCRIPT || /^airlock-linux-[a-z0-9]+$/.test(name)
}

/** Top folder inside each .tar.gz. */
export const TOP_FOLDERS = {files: 'offline-files', packages: 'component-tools'} as const

/**
 * bundle.json's text, exactly `JSON.stringify(lock, null, 2)` and a newline,
 * in pieces of about 64 KiB: a lock of thousands of images and blobs is
 * written without its whole text in memory (twice, as a string and as bytes).
 * Each top-level array goes element by element; an element is indented as
 * JSON.stringify nests it (JSON has no raw newline inside a string).
 */
export function* lockText(lock: object): Generator<string> {
  let out = ''
  const flush = function* (): Generator<string> {
    if (out.length >= 64 << 10) {
      yield out
      out = ''
    }
  }
  const entries = Object.entries(lock).filter(
    ([, v]) => v !== undefined && typeof v !== 'function' && typeof v !== 'symbol',
  )
  if (entries.length === 0) {
    yield '{}\n'
    return
  }
  out += '{\n'
  for (const [i, [key, value]] of entries.entries()) {
    out += `  ${JSON.stringify(key)}: `
    if (Array.isArray(value) && value.length > 0) {
      out += '[\n'
      for (const [j, el] of value.entries()) {
        out += `    ${(JSON.stringify(el, null, 2) ?? 'null').replaceAll('\n', '\n    ')}${j < value.length - 1 ? ',' : ''}\n`
        yield* flush()
      }
      out += '  ]'
    } else {
      out += JSON.stringify(value, null, 2).replaceAll('\n', '\n  ')
    }
    out += i < entries.length - 1 ? ',\n' : '\n'
    yield* flush()
  }
  yield `${out}}\n`
}
