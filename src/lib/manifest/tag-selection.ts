import semver from 'semver'

import {isReferrerTag} from '../registry/referrers.js'

/**
 * Which tags of a repository an `images` entry takes: `all`, or rules applied
 * in this order: `regex` (the tag must match), `exclude` (it must not),
 * `semver` (an npm range; the tag must parse as a version, with or without a
 * leading `v`, and satisfy it), `latest` (the N highest versions of what is
 * left). Pure: the tag list is read elsewhere.
 */
export type TagSelection = 'all' | TagRules

export interface TagRules {
  semver?: string
  regex?: string
  exclude?: string
  latest?: number
}

export const TAG_RULE_KEYS = ['semver', 'regex', 'exclude', 'latest'] as const

export interface SelectedTag {
  tag: string
  /** The rules it passed, e.g. `semver >=1.28.0 <1.29.0, latest 2 (#1)`. */
  rule: string
}

export interface LeftOutTag {
  tag: string
  /** Why it was not taken, e.g. `outside >=1.28.0 <1.29.0`. */
  reason: string
}

export interface TagSelectionResult {
  /** Newest first where tags are versions, then the other tags by name. */
  selected: SelectedTag[]
  left: LeftOutTag[]
}

/** undefined when `range` is an npm semver range, else why not. */
export function checkSemverRange(range: string): string | undefined {
  if (range.trim() === '') return 'expected a semver range, e.g. ">=1.29.0 <1.30.0" or "~1.29"'
  return semver.validRange(range) === null
    ? `"${range}" is not a semver range: expected npm's syntax, e.g. ">=1.29.0 <1.30.0", "~1.29", "^1.2.0"`
    : undefined
}

/** undefined when `re` compiles as a regular expression, else why not. */
export function checkRegex(re: string): string | undefined {
  if (re === '') return 'expected a regular expression'
  try {
    new RegExp(re)
    return undefined
  } catch (error) {
    return `"${re}" is not a regular expression: ${(error as Error).message.replace(/^Invalid regular expression: /, '')}`
  }
}

/** The selection as the manifest writes it, for messages: `all`, `{semver: ">=1.28.0", latest: 2}`. */
export function describeSelection(sel: TagSelection): string {
  if (sel === 'all') return 'all'
  const parts = TAG_RULE_KEYS.filter((k) => sel[k] !== undefined).map(
    (k) => `${k}: ${typeof sel[k] === 'number' ? sel[k] : JSON.stringify(sel[k])}`,
  )
  return `{${parts.join(', ')}}`
}

/** A tag as a version (`v1.2.3` and `1.2.3` both), or undefined. */
export function tagVersion(tag: string): semver.SemVer | undefined {
  return semver.parse(tag) ?? undefined
}

/**
 * Newest first by version; tags that are not versions after, by name. Two
 * tags of one version (`v1.2.3`, `1.2.3`) are ordered by name.
 */
export function compareTags(a: string, b: string): number {
  const va = tagVersion(a)
  const vb = tagVersion(b)
  if (va && vb) return semver.rcompare(va, vb) || (a < b ? -1 : a > b ? 1 : 0)
  if (va) return -1
  if (vb) return 1
  return a < b ? -1 : a > b ? 1 : 0
}

/** Apply a selection to a repository's tags: what it takes, by which rule, and why each other tag was left out. */
export function selectTags(tags: string[], sel: TagSelection): TagSelectionResult {
  const left: LeftOutTag[] = []
  const sorted: string[] = []
  for (const tag of [...new Set(tags)].sort(compareTags)) {
    // A signature's or attestation's tag is not an image: it comes with the referrers of the image it names.
    if (isReferrerTag(tag))
      left.push({tag, reason: "an artifact tag (referrers tag schema or cosign), copied with its image's referrers"})
    else sorted.push(tag)
  }
  if (sel === 'all') return {selected: sorted.map((tag) => ({tag, rule: 'all'})), left}
  const regex = sel.regex === undefined ? undefined : new RegExp(sel.regex)
  const exclude = sel.exclude === undefined ? undefined : new RegExp(sel.exclude)
  const passed: string[] = []
  const rules: string[] = []
  if (regex) rules.push(`regex ${sel.regex}`)
  if (exclude) rules.push(`exclude ${sel.exclude}`)
  if (sel.semver !== undefined) rules.push(`semver ${sel.semver}`)
  for (const tag of sorted) {
    if (regex && !regex.test(tag)) {
      left.push({tag, reason: `does not match regex ${sel.regex}`})
      continue
    }
    if (exclude?.test(tag)) {
      left.push({tag, reason: `matches exclude ${sel.exclude}`})
      continue
    }
    if (sel.semver !== undefined) {
      const v = tagVersion(tag)
      if (!v) {
        left.push({tag, reason: `not a version (semver ${sel.semver})`})
        continue
      }
      if (!semver.satisfies(v, sel.semver)) {
        const prerelease = v.prerelease.length > 0 && semver.satisfies(v, sel.semver, {includePrerelease: true})
        left.push({
          tag,
          reason: prerelease ? `a prerelease, which ${sel.semver} does not ask for` : `outside ${sel.semver}`,
        })
        continue
      }
    }
    passed.push(tag)
  }
  if (sel.latest === undefined) {
    return {
      selected: passed.map((tag) => ({tag, rule: rules.join(', ')})),
      left: left.sort((a, b) => compareTags(a.tag, b.tag)),
    }
  }
  // `latest` ranks versions only; without a range that asks for them, releases only (npm's rule for prereleases).
  // Tags of one version (`v1.2.3`, `1.2.3`) are one version: both are kept or neither.
  const selected: SelectedTag[] = []
  const versions: string[] = []
  for (const tag of passed) {
    const v = tagVersion(tag)
    if (!v) {
      left.push({tag, reason: 'not a version (latest ranks versions only)'})
      continue
    }
    if (sel.semver === undefined && v.prerelease.length > 0) {
      left.push({tag, reason: 'a prerelease (latest without a semver range ranks releases only)'})
      continue
    }
    if (versions.at(-1) !== v.version) versions.push(v.version)
    if (versions.length > sel.latest) left.push({tag, reason: `below the ${sel.latest} highest`})
    else selected.push({tag, rule: [...rules, `latest ${sel.latest} (#${versions.length})`].join(', ')})
  }
  return {selected, left: left.sort((a, b) => compareTags(a.tag, b.tag))}
}
