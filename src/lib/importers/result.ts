/** What an import did with one file of the bundle; the `--json` rows of both imports. */
export interface ImportedFile {
  /** Path under the root, or the object key. */
  path: string
  size: number
  sha256: string
  action: 'written' | 'skipped'
}

export interface ImportTotals {
  files: ImportedFile[]
  written: number
  skipped: number
  bytesWritten: number
}

export function totals(files: ImportedFile[]): ImportTotals {
  let written = 0
  let bytesWritten = 0
  for (const f of files) {
    if (f.action === 'written') {
      written++
      bytesWritten += f.size
    }
  }
  return {files, written, skipped: files.length - written, bytesWritten}
}
