/**
 * rpm's rich (boolean) dependencies, as `Requires: (a or b)` writes them and
 * repodata lists them: parsed into a tree the resolver evaluates.
 *
 * Operators (rpm's rpmrichparse): `and`, `or`, `with`, `without`, `if`,
 * `if ... else`, `unless`, `unless ... else`. As in rpm, one level of
 * parentheses holds one kind of operator (`(a and b or c)` is an error;
 * `(a and (b or c))` is not); names may contain parentheses of their own
 * (`(perl(Foo::Bar) or baz)`).
 */
import type {Dep, DepFlag} from './dependency.js'
import {parseEvr} from './version.js'

export type Rich =
  | {op: 'dep'; dep: Dep}
  | {op: 'and' | 'or' | 'with'; terms: Rich[]}
  | {op: 'without'; left: Rich; right: Rich}
  | {op: 'if' | 'unless'; then: Rich; cond: Rich; else?: Rich}

const OPS = new Set(['and', 'or', 'with', 'without', 'if', 'unless'])
const COMPARISON: Record<string, DepFlag> = {
  '=': 'EQ',
  '==': 'EQ',
  '<': 'LT',
  '>': 'GT',
  '<=': 'LE',
  '=<': 'LE',
  '>=': 'GE',
  '=>': 'GE',
}

export class RichSyntaxError extends Error {}

export function isRich(name: string): boolean {
  return name.startsWith('(')
}

/** Parse a rich dependency such as `(a >= 1.2 or (b if c))`. Throws RichSyntaxError. */
export function parseRich(text: string): Rich {
  let pos = 0
  const fail = (what: string): never => {
    throw new RichSyntaxError(`${what} at offset ${pos} of ${JSON.stringify(text)}`)
  }
  const space = (): void => {
    while (pos < text.length && /\s/.test(text[pos])) pos++
  }
  // A name: up to white space or an unbalanced ')'; its own parentheses stay in it.
  const word = (): string => {
    space()
    const start = pos
    let depth = 0
    while (pos < text.length) {
      const c = text[pos]
      if (/\s/.test(c)) break
      if (c === '(') depth++
      else if (c === ')') {
        if (depth === 0) break
        depth--
      }
      pos++
    }
    return text.slice(start, pos)
  }
  const peekWord = (): string => {
    const at = pos
    const w = word()
    pos = at
    return w
  }
  const term = (): Rich => {
    space()
    if (text[pos] === '(') return group()
    const name = word()
    if (!name) fail('expected a name')
    if (OPS.has(name) || name === 'else') fail(`expected a name, found the operator "${name}"`)
    const maybeOp = peekWord()
    const flags = COMPARISON[maybeOp]
    if (!flags) return {op: 'dep', dep: {name}}
    word()
    const evr = word()
    if (!evr) fail(`expected a version after "${maybeOp}"`)
    return {op: 'dep', dep: {name, flags, evr: parseEvr(evr)}}
  }
  const group = (): Rich => {
    pos++ // '('
    const first = term()
    space()
    let node: Rich = first
    const op = peekWord()
    if (text[pos] !== ')') {
      if (!OPS.has(op)) fail(`expected and, or, if, unless, with or without, found "${op}"`)
      word()
      if (op === 'if' || op === 'unless') {
        const cond = term()
        space()
        let otherwise: Rich | undefined
        if (peekWord() === 'else') {
          word()
          otherwise = term()
        }
        node = {op, then: first, cond, ...(otherwise ? {else: otherwise} : {})}
      } else if (op === 'without') {
        node = {op, left: first, right: term()}
      } else {
        const terms = [first, term()]
        space()
        while (text[pos] !== ')' && peekWord() === op) {
          word()
          terms.push(term())
          space()
        }
        node = {op: op as 'and' | 'or' | 'with', terms}
      }
    }
    space()
    if (text[pos] !== ')') {
      const next = peekWord()
      fail(OPS.has(next) || next === 'else' ? `"${next}" cannot follow here without parentheses` : 'expected ")"')
    }
    pos++
    return node
  }
  space()
  if (text[pos] !== '(') fail('expected "("')
  const tree = group()
  space()
  if (pos !== text.length) fail('unexpected text after ")"')
  return tree
}
