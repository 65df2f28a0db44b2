import {describe, expect, it} from 'vitest'

import {compareTags, describeSelection, selectTags} from '../../src/lib/manifest/tag-selection.js'

// The tags the registry tests seed, in no particular order.
const TAGS = [
  'latest',
  'v1.28.2',
  'v1.29.0-rc.1',
  'v1.27.9',
  'dev-abc',
  'v1.28.0',
  'v1.29.0',
  'v1.28.4',
  'v1.28.1',
  'v1.28.3',
]

const picked = (tags: string[], sel: Parameters<typeof selectTags>[1]) =>
  selectTags(tags, sel).selected.map((s) => s.tag)

describe('selectTags', () => {
  it('takes a semver range as npm writes it, tags with a v, no prerelease the range does not ask for', () => {
    expect(picked(TAGS, {semver: '>=1.28.0 <1.30.0'})).toEqual([
      'v1.29.0',
      'v1.28.4',
      'v1.28.3',
      'v1.28.2',
      'v1.28.1',
      'v1.28.0',
    ])
    expect(picked(TAGS, {semver: '~1.28'})).toEqual(['v1.28.4', 'v1.28.3', 'v1.28.2', 'v1.28.1', 'v1.28.0'])
    expect(picked(TAGS, {semver: '^v1.27.0'})).toEqual([
      'v1.29.0',
      'v1.28.4',
      'v1.28.3',
      'v1.28.2',
      'v1.28.1',
      'v1.28.0',
      'v1.27.9',
    ])
    // A range that names a 1.29.0 prerelease asks for 1.29.0's prereleases.
    expect(picked(TAGS, {semver: '>=1.29.0-0'})).toEqual(['v1.29.0', 'v1.29.0-rc.1'])
  })

  it('never takes a signature or attestation tag as an image, not even with tags: all or a regex that matches it', () => {
    const hex = 'ab'.repeat(32)
    const artifacts = [`sha256-${hex}`, `sha256-${hex}.sig`, `sha256-${hex}.att`, `sha256-${hex}.sbom`]
    const tags = [...TAGS, ...artifacts]
    expect(picked(tags, 'all')).toEqual(picked(TAGS, 'all'))
    expect(picked(tags, {regex: '^sha256-'})).toEqual([])
    const r = selectTags(tags, 'all')
    expect(r.left.map((l) => l.tag).sort()).toEqual([...artifacts].sort())
    expect(r.left[0].reason).toMatch(/artifact tag/)
    // A tag that only looks alike is an ordinary tag.
    expect(picked(['sha256-short', `sha256-${hex}x`], 'all').sort()).toEqual([`sha256-${hex}x`, 'sha256-short'])
  })

  it('says why each other tag was left out', () => {
    const r = selectTags(TAGS, {semver: '>=1.28.0 <1.30.0'})
    expect(r.left).toEqual([
      {tag: 'v1.29.0-rc.1', reason: 'a prerelease, which >=1.28.0 <1.30.0 does not ask for'},
      {tag: 'v1.27.9', reason: 'outside >=1.28.0 <1.30.0'},
      {tag: 'dev-abc', reason: 'not a version (semver >=1.28.0 <1.30.0)'},
      {tag: 'latest', reason: 'not a version (semver >=1.28.0 <1.30.0)'},
    ])
    expect(r.selected[0]).toEqual({tag: 'v1.29.0', rule: 'semver >=1.28.0 <1.30.0'})
  })

  it('latest: N keeps the N highest versions, ranking only tags that are versions (1.10.0 above 1.9.0)', () => {
    expect(picked(TAGS, {latest: 2})).toEqual(['v1.29.0', 'v1.28.4'])
    expect(picked(['1.9.0', '1.10.0', '1.2.0', 'stable'], {latest: 1})).toEqual(['1.10.0'])
    expect(picked(TAGS, {semver: '~1.28', latest: 3})).toEqual(['v1.28.4', 'v1.28.3', 'v1.28.2'])
    const r = selectTags(TAGS, {latest: 2})
    expect(r.selected[1]).toEqual({tag: 'v1.28.4', rule: 'latest 2 (#2)'})
    expect(r.left.find((l) => l.tag === 'v1.29.0-rc.1')?.reason).toBe(
      'a prerelease (latest without a semver range ranks releases only)',
    )
    expect(r.left.find((l) => l.tag === 'latest')?.reason).toBe('not a version (latest ranks versions only)')
    expect(r.left.find((l) => l.tag === 'v1.28.3')?.reason).toBe('below the 2 highest')
    // Fewer versions than asked for: all of them.
    expect(picked(['v1.0.0', 'main'], {latest: 5})).toEqual(['v1.0.0'])
  })

  it('counts a version once when it is tagged with and without a v', () => {
    expect(picked(['1.2.0', 'v1.2.0', 'v1.1.0', '1.0.0'], {latest: 2})).toEqual(['1.2.0', 'v1.2.0', 'v1.1.0'])
  })

  it('applies regex, then exclude', () => {
    const tags = ['v3.27.0', 'v3.27.1', 'v3.27.2-rc', 'v3.26.4', 'v3.27.1-arm64']
    const r = selectTags(tags, {regex: '^v3\\.27\\.', exclude: '-rc|-arm64$'})
    expect(r.selected.map((s) => s.tag)).toEqual(['v3.27.1', 'v3.27.0'])
    expect(r.selected[0].rule).toBe('regex ^v3\\.27\\., exclude -rc|-arm64$')
    expect(r.left).toEqual([
      {tag: 'v3.27.2-rc', reason: 'matches exclude -rc|-arm64$'},
      {tag: 'v3.27.1-arm64', reason: 'matches exclude -rc|-arm64$'},
      {tag: 'v3.26.4', reason: 'does not match regex ^v3\\.27\\.'},
    ])
    // A regex alone takes what matches, prereleases included: it chooses names, not versions.
    expect(picked(tags, {regex: '-rc$'})).toEqual(['v3.27.2-rc'])
    expect(picked(TAGS, {exclude: '^v'})).toEqual(['dev-abc', 'latest'])
  })

  it('all takes every tag, versions newest first, then the others by name', () => {
    expect(picked(TAGS, 'all')).toEqual([
      'v1.29.0',
      'v1.29.0-rc.1',
      'v1.28.4',
      'v1.28.3',
      'v1.28.2',
      'v1.28.1',
      'v1.28.0',
      'v1.27.9',
      'dev-abc',
      'latest',
    ])
    expect(selectTags(TAGS, 'all').left).toEqual([])
  })

  it('selects nothing when nothing matches', () => {
    expect(selectTags(TAGS, {semver: '>=2.0.0'}).selected).toEqual([])
    expect(selectTags([], 'all').selected).toEqual([])
  })

  it('orders tags newest first and describes a selection as the manifest writes it', () => {
    expect(['1.9.0', 'b', '1.10.0', 'a', 'v1.10.0'].sort(compareTags)).toEqual(['1.10.0', 'v1.10.0', '1.9.0', 'a', 'b'])
    expect(describeSelection({semver: '>=1.28.0', latest: 2})).toBe('{semver: ">=1.28.0", latest: 2}')
    expect(describeSelection('all')).toBe('all')
  })
})
