import type {RepositoriesReport, SelectionReport} from './resolve.js'

/** Tags of one reason listed at most, in text; `--json` has them all. */
const SHOWN = 20

/**
 * The selection report as text lines: per repository, each selected tag with
 * the rules it passed, then the tags left out, grouped by why.
 *
 *   spec.images[1] 127.0.0.1:5001/app {latest: 2}: 2 of 10 tags
 *     + v1.29.0   latest 2 (#1)
 *     - below the 2 highest: v1.28.3, v1.28.2, ...
 */
export function formatSelections(selections: SelectionReport[], repositories: RepositoriesReport[] = []): string[] {
  const lines: string[] = []
  for (const r of repositories) {
    const patterns = [
      r.include === undefined ? '' : `include ${JSON.stringify(r.include)}`,
      r.exclude === undefined ? '' : `exclude ${JSON.stringify(r.exclude)}`,
    ]
      .filter(Boolean)
      .join(', ')
    lines.push(
      `${r.field} ${r.registry}${patterns ? ` (${patterns})` : ''}: ${r.repositories.length} repositor${r.repositories.length === 1 ? 'y' : 'ies'}${r.leftOut > 0 ? `, ${r.leftOut} left out` : ''}`,
    )
  }
  for (const s of selections) {
    const total = s.selected.length + s.left.length
    lines.push(
      `${s.field} ${s.repository} ${s.selection}: ${s.selected.length} of ${total} tag${total === 1 ? '' : 's'}`,
    )
    const width = Math.max(0, ...s.selected.map((t) => t.tag.length))
    for (const t of s.selected)
      lines.push(`  + ${t.tag.padEnd(width)}  ${t.rule}${t.duplicateOf ? ` (already named by ${t.duplicateOf})` : ''}`)
    const byReason = new Map<string, string[]>()
    for (const l of s.left) byReason.set(l.reason, [...(byReason.get(l.reason) ?? []), l.tag])
    for (const [reason, tags] of byReason) {
      const shown = tags.slice(0, SHOWN).join(', ')
      lines.push(`  - ${reason}: ${shown}${tags.length > SHOWN ? ` and ${tags.length - SHOWN} more` : ''}`)
    }
  }
  return lines
}
