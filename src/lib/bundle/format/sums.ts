/**
 * `SHA256SUMS` in the format `sha256sum -c` reads: `<hex>  <name>` per line.
 */
export interface SumLine {
  sha256: string
  name: string
}

export function formatSums(lines: SumLine[]): string {
  return lines.map((l) => `${l.sha256}  ${l.name}\n`).join('')
}

/** Lines of a SHA256SUMS file; malformed lines are returned apart, by number, for the report. */
export function parseSums(text: string): {lines: SumLine[]; bad: number[]} {
  const lines: SumLine[] = []
  const bad: number[] = []
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '')
    if (line.trim() === '') return
    // Text mode is two spaces, binary mode a space and `*`; both name the same file.
    const m = /^([a-fA-F0-9]{64}) [ *](.+)$/.exec(line)
    if (!m) bad.push(i + 1)
    else lines.push({sha256: m[1].toLowerCase(), name: m[2]})
  })
  return {lines, bad}
}
