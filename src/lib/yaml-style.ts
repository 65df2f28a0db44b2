import type {ToStringOptions} from 'yaml'

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

/**
 * The options that write a parsed file back as it was written: its
 * indentation, no folding of long lines, and flow collections padded
 * (`[ a ]`) only when the file pads them.
 */
export function writeOptions(text: string): ToStringOptions {
  return {...detectStyle(text), lineWidth: 0, flowCollectionPadding: /[[{] +[^\s\]}#]/.test(text.replace(/#.*$/gm, ''))}
}
