import pLimit from 'p-limit'

import type {TagLister} from '../content/roles.js'
import {DEFAULT_CONCURRENCY} from '../defaults.js'
import {isAirlockError, ManifestError, type ManifestProblem, RegistryError} from '../errors.js'
import {describeSelection, selectTags, type TagSelection} from '../manifest/tag-selection.js'
import type {ImageEntry, Manifest, SourcePos} from '../manifest/types.js'
import {formatReference} from '../oci/reference.js'

/** What resolving needs of a registry: its tag lists (the TagLister role) and its catalog, each read to the end of their pages. */
export interface SelectionRegistry extends TagLister {
  catalog(): Promise<string[]>
}

/** What one repository's selection took and left, for `validate`, `pull --dry-run`, `lock` and `--json`. */
export interface SelectionReport {
  /** The manifest entry: `spec.images[2]` or `spec.repositories[0]`. */
  field: string
  /** `host/path` */
  repository: string
  /** As the manifest writes it: `{semver: ">=1.28.0", latest: 2}`. */
  selection: string
  selected: {tag: string; rule: string; ref: string; duplicateOf?: string}[]
  left: {tag: string; reason: string}[]
}

/** A `spec.repositories` entry: which repositories of the catalog it took. */
export interface RepositoriesReport {
  field: string
  registry: string
  include?: string
  exclude?: string
  repositories: string[]
  /** Catalog entries the patterns left out. */
  leftOut: number
}

export interface Resolution {
  /** Every image the manifest names: its own entries, then each selection's tags, each name once. */
  images: ImageEntry[]
  /** Per selection field, the entries it added (an empty list when each of its tags has an entry already). */
  expansions: Map<string, ImageEntry[]>
  selections: SelectionReport[]
  repositories: RepositoriesReport[]
}

export interface ResolveOptions {
  /** The registry a host's selections are read from (one per host for the whole run). */
  registry: (host: string) => SelectionRegistry
  /** Tag lists read at once (default 8). */
  concurrency?: number
}

/** True when the manifest has selections that need a registry to resolve. */
export function hasSelections(m: Manifest): boolean {
  return (m.selections?.length ?? 0) > 0 || (m.repositories?.length ?? 0) > 0
}

/**
 * The manifest with its selections resolved: `images` lists every image
 * (its own entries and each selected tag), and no selection is left. A
 * manifest without selections is returned as it is, and no registry is read.
 */
export async function resolveManifest(
  m: Manifest,
  opts: ResolveOptions,
): Promise<{manifest: Manifest; resolution?: Resolution}> {
  if (!hasSelections(m)) return {manifest: m}
  const resolution = await resolveSelections(m, opts)
  return {manifest: {...m, images: resolution.images, selections: [], repositories: []}, resolution}
}

/** The key two entries for one image share, pinned or not: `host/repo:tag`. */
function imageKey(e: Pick<ImageEntry, 'ref'>): string {
  return formatReference({...e.ref, digest: e.ref.tag ? undefined : e.ref.digest})
}

interface Pending {
  field: string
  registry: string
  repository: string
  tags: TagSelection
  platforms: ImageEntry['platforms']
  pos: SourcePos
  /** Part of a `spec.repositories` entry, where one repository without a match is no error. */
  fromCatalog: boolean
}

/**
 * Resolve every tag selection and `spec.repositories` entry of a manifest
 * against the registries' catalogs and tag lists (read through every page).
 * A selection that matches nothing is an invalid manifest (exit 2): all such
 * problems are reported at once, at the selection's file:line:column.
 */
export async function resolveSelections(m: Manifest, opts: ResolveOptions): Promise<Resolution> {
  const limit = pLimit(opts.concurrency ?? DEFAULT_CONCURRENCY)
  const problems: ManifestProblem[] = []
  const problem = (pos: SourcePos, path: string, message: string) =>
    problems.push({file: m.file, ...pos, path, message})

  // Catalogs first: they say which repositories the repositories entries add.
  const repositories: RepositoriesReport[] = []
  const pending: Pending[] = (m.selections ?? []).map((s) => ({...s, fromCatalog: false}))
  await Promise.all(
    (m.repositories ?? []).map(async (r) => {
      const all = await limit(() =>
        withContext(() => opts.registry(r.registry).catalog(), `the catalog of ${r.registry}`),
      )
      const include = r.include === undefined ? undefined : new RegExp(r.include)
      const exclude = r.exclude === undefined ? undefined : new RegExp(r.exclude)
      const taken = all.filter((path) => (!include || include.test(path)) && !exclude?.test(path)).sort()
      repositories.push({
        field: r.field,
        registry: r.registry,
        include: r.include,
        exclude: r.exclude,
        repositories: taken,
        leftOut: all.length - taken.length,
      })
      if (taken.length === 0) {
        const patterns = [
          r.include === undefined ? '' : `include ${JSON.stringify(r.include)}`,
          r.exclude === undefined ? '' : `exclude ${JSON.stringify(r.exclude)}`,
        ]
          .filter(Boolean)
          .join(' and ')
        problem(
          r.pos,
          r.field,
          `no repository of ${r.registry} matches ${patterns || 'the entry'}: its catalog lists ${all.length === 0 ? 'none' : sample(all.sort())}`,
        )
        return
      }
      for (const repository of taken) {
        pending.push({
          field: r.field,
          registry: r.registry,
          repository,
          tags: r.tags,
          platforms: r.platforms,
          pos: r.pos,
          fromCatalog: true,
        })
      }
    }),
  )
  repositories.sort((a, b) => a.field.localeCompare(b.field, 'en', {numeric: true}))

  const listed = await Promise.all(
    pending.map((p) =>
      limit(async () => {
        try {
          return await withContext(
            () => opts.registry(p.registry).listTags(p.repository),
            `the tags of ${p.registry}/${p.repository}`,
          )
        } catch (error) {
          // A repository the registry does not know has no tags: the selection matches nothing.
          if (error instanceof RegistryError && (error.status === 404 || error.codes.includes('NAME_UNKNOWN')))
            return undefined
          throw error
        }
      }),
    ),
  )

  const images = [...m.images]
  const seen = new Map<string, string>(m.images.map((e) => [imageKey(e), e.name]))
  const expansions = new Map<string, ImageEntry[]>()
  const selections: SelectionReport[] = []
  const catalogHits = new Map<string, number>()
  pending.forEach((p, k) => {
    const tags = listed[k]
    const repo = `${p.registry}/${p.repository}`
    const {selected, left} = selectTags(tags ?? [], p.tags)
    const report: SelectionReport = {
      field: p.field,
      repository: repo,
      selection: describeSelection(p.tags),
      selected: [],
      left,
    }
    selections.push(report)
    const added = expansions.get(p.field) ?? []
    expansions.set(p.field, added)
    if (p.fromCatalog) catalogHits.set(p.field, (catalogHits.get(p.field) ?? 0) + selected.length)
    if (selected.length === 0 && !p.fromCatalog) {
      const has =
        tags === undefined
          ? 'the registry does not know the repository'
          : tags.length === 0
            ? 'it has no tags'
            : `it has ${sample([...tags].sort())}`
      problem(p.pos, `${p.field}.tags`, `no tag of ${repo} matches ${report.selection}: ${has}`)
      return
    }
    for (const s of selected) {
      const entry: ImageEntry = {
        name: `${repo}:${s.tag}`,
        ref: {registry: p.registry, repository: p.repository, tag: s.tag},
        platforms: p.platforms,
        pos: p.pos,
      }
      const key = imageKey(entry)
      const first = seen.get(key)
      report.selected.push({tag: s.tag, rule: s.rule, ref: entry.name, ...(first ? {duplicateOf: first} : {})})
      if (first) continue
      seen.set(key, p.field)
      images.push(entry)
      added.push(entry)
    }
  })
  for (const r of m.repositories ?? []) {
    const report = repositories.find((x) => x.field === r.field)
    if (report && report.repositories.length > 0 && (catalogHits.get(r.field) ?? 0) === 0) {
      problem(
        r.pos,
        `${r.field}.tags`,
        `no tag of the ${report.repositories.length} repositories of ${r.registry} that the entry takes matches ${describeSelection(r.tags)}`,
      )
    }
  }
  if (problems.length > 0)
    throw new ManifestError(
      m.file,
      problems.sort((a, b) => a.line - b.line || a.column - b.column),
    )
  return {images, expansions, selections, repositories}
}

/** Up to 10 names, and how many more. */
function sample(names: string[]): string {
  const shown = names.slice(0, 10).join(', ')
  return names.length > 10 ? `${shown} and ${names.length - 10} more` : shown
}

/** Name what was being read in an error that does not say it already. */
async function withContext<T>(fn: () => Promise<T>, what: string): Promise<T> {
  try {
    return await fn()
  } catch (error) {
    if (isAirlockError(error) && !error.message.includes(what)) error.details.unshift(`while reading ${what}`)
    throw error
  }
}
