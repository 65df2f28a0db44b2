/**
 * Rows as aligned columns, for a command's stdout: every column but the
 * last padded to its widest cell, two spaces between columns.
 */
export function columns(rows: string[][], opts: {head?: string[]; indent?: string} = {}): string[] {
  const all = opts.head ? [opts.head, ...rows] : rows
  if (all.length === 0) return []
  const n = Math.max(...all.map((r) => r.length))
  const widths = Array.from({length: n}, (_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)))
  const indent = opts.indent ?? ''
  return all.map((r) =>
    `${indent}${r.map((v, c) => (c === r.length - 1 ? v : v.padEnd(widths[c]))).join('  ')}`.trimEnd(),
  )
}

/** `3 image(s)` -> `3 images`, `1 images` -> `1 image`; `many` for a word that does not take an s (`binaries`). */
export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`
}
