import type {BundleLock} from '../../bundle-json.js'
import {isDigest, SHA256_HEX} from '../../content/digest.js'
import {folderClashes, isSafeRelativePath} from '../../content/paths.js'
import {BundleError} from '../../errors.js'
import {BUNDLE_FILES} from './bundle-files.js'

const KINDS = new Set(['binary', 'package', 'chart', 'os-metadata', 'os-package'])

/** Parse and check lock text (bundle.json or a store's records.json). */
export function parseBundleLock(text: string, file: string): BundleLock {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (err) {
    throw new BundleError(`${file} is not valid JSON: ${(err as Error).message}`, {cause: err})
  }
  const problems = lockProblems(doc)
  if (problems.length > 0) {
    throw new BundleError(`${file} is malformed (${problems.length} problem${problems.length === 1 ? '' : 's'})`, {
      details: problems,
    })
  }
  return doc as BundleLock
}

/** Every way `doc` differs from the lock's shape; empty when it is a valid lock. */
export function lockProblems(doc: unknown): string[] {
  const problems: string[] = []
  if (!isObject(doc)) return ['the document is not a JSON object']
  if (doc.apiVersion !== 'airlock/v1')
    problems.push(`apiVersion: expected "airlock/v1", got ${JSON.stringify(doc.apiVersion)}`)
  if (typeof doc.name !== 'string' || doc.name === '') problems.push('name: must be a non-empty string')
  if (doc.version !== undefined && typeof doc.version !== 'string') problems.push('version: must be a string')
  if (!Array.isArray(doc.images)) problems.push('images: must be an array')
  else {
    const refs = new Set<string>()
    doc.images.forEach((img: unknown, i: number) => {
      const at = `images[${i}]`
      if (!isObject(img)) return void problems.push(`${at}: must be an object`)
      if (typeof img.ref !== 'string' || img.ref === '') problems.push(`${at}.ref: must be a non-empty string`)
      else if (refs.has(img.ref)) problems.push(`${at}.ref: ${img.ref} is listed twice`)
      else refs.add(img.ref)
      if (typeof img.digest !== 'string' || !isDigest(img.digest))
        problems.push(`${at}.digest: must be sha256:<64 hex>`)
      if (typeof img.mediaType !== 'string' || img.mediaType === '')
        problems.push(`${at}.mediaType: must be a non-empty string`)
      if (!Array.isArray(img.platforms) || !img.platforms.every((p) => typeof p === 'string'))
        problems.push(`${at}.platforms: must be an array of strings`)
      if (!isSize(img.size)) problems.push(`${at}.size: must be a whole number >= 0`)
      if (img.sourceDigest !== undefined && (typeof img.sourceDigest !== 'string' || !isDigest(img.sourceDigest))) {
        problems.push(`${at}.sourceDigest: must be sha256:<64 hex>`)
      }
      if (img.referrers !== undefined) referrerProblems(img.referrers, at, problems)
    })
  }
  if (!Array.isArray(doc.files)) problems.push('files: must be an array')
  else {
    const paths = new Set<string>()
    /** sha256 by path of each tree: both are imported into one namespace, so a path in both must be one content. */
    const trees = {files: new Map<string, unknown>(), packages: new Map<string, unknown>()}
    doc.files.forEach((f: unknown, i: number) => {
      const at = `files[${i}]`
      if (!isObject(f)) return void problems.push(`${at}: must be an object`)
      if (typeof f.kind !== 'string' || !KINDS.has(f.kind))
        problems.push(`${at}.kind: must be binary, package, chart, os-metadata or os-package`)
      if (typeof f.url !== 'string') problems.push(`${at}.url: must be a string`)
      if (typeof f.path !== 'string' || !isSafeRelativePath(f.path))
        problems.push(`${at}.path: must be a relative path without empty, . or .. segments`)
      else {
        const key = `${f.kind === 'binary' ? 'files' : 'packages'}/${f.path}`
        if (paths.has(key)) problems.push(`${at}.path: ${f.path} is listed twice`)
        paths.add(key)
        const [mine, theirs] = f.kind === 'binary' ? [trees.files, trees.packages] : [trees.packages, trees.files]
        if (theirs.has(f.path) && theirs.get(f.path) !== f.sha256) {
          problems.push(
            `${at}.path: ${f.path} is both a binary and a package with a different sha256 (they are imported into one tree)`,
          )
        }
        if (!mine.has(f.path)) mine.set(f.path, f.sha256)
      }
      if (!isSize(f.size)) problems.push(`${at}.size: must be a whole number >= 0`)
      if (typeof f.sha256 !== 'string' || !SHA256_HEX.test(f.sha256))
        problems.push(`${at}.sha256: must be 64 lowercase hex digits`)
      if (f.fromBase !== undefined && f.fromBase !== true) problems.push(`${at}.fromBase: must be true when present`)
      if (
        f.os !== undefined &&
        (!isObject(f.os) ||
          ['name', 'version', 'architecture'].some((k) => typeof (f.os as Record<string, unknown>)[k] !== 'string'))
      ) {
        problems.push(`${at}.os: must be {name, version, architecture}`)
      }
    })
    fileUnderFileProblems(doc.files, problems)
  }
  if (doc.tools !== undefined) toolProblems(doc.tools, problems)
  if (doc.blobs !== undefined) {
    if (!Array.isArray(doc.blobs)) problems.push('blobs: must be an array')
    else {
      doc.blobs.forEach((b: unknown, i: number) => {
        const at = `blobs[${i}]`
        if (!isObject(b)) return void problems.push(`${at}: must be an object`)
        if (typeof b.digest !== 'string' || !isDigest(b.digest)) problems.push(`${at}.digest: must be sha256:<64 hex>`)
        if (typeof b.mediaType !== 'string') problems.push(`${at}.mediaType: must be a string`)
        if (!isSize(b.size)) problems.push(`${at}.size: must be a whole number >= 0`)
        if (b.fromBase !== undefined && b.fromBase !== true) problems.push(`${at}.fromBase: must be true when present`)
      })
    }
  }
  if (doc.base !== undefined) {
    if (!Array.isArray(doc.base)) problems.push('base: must be an array')
    else {
      doc.base.forEach((b: unknown, i: number) => {
        const at = `base[${i}]`
        if (!isObject(b)) return void problems.push(`${at}: must be an object`)
        if (typeof b.name !== 'string' || b.name === '') problems.push(`${at}.name: must be a non-empty string`)
        if (b.version !== undefined && typeof b.version !== 'string') problems.push(`${at}.version: must be a string`)
        if (typeof b.lockSha256 !== 'string' || !SHA256_HEX.test(b.lockSha256))
          problems.push(`${at}.lockSha256: must be 64 lowercase hex digits`)
      })
    }
  }
  if (doc.osRepositories !== undefined)
    osRepositoryProblems(doc.osRepositories, Array.isArray(doc.files) ? doc.files : [], problems)
  return problems
}

/** `osRepositories`: each names its type, URL, mirrored path and key, and only files `files[]` lists under packages/. */
function osRepositoryProblems(list: unknown, files: unknown[], problems: string[]): void {
  if (!Array.isArray(list)) return void problems.push('osRepositories: must be an array')
  const packagePaths = new Set(
    files.flatMap((f) => (isObject(f) && f.kind !== 'binary' && typeof f.path === 'string' ? [f.path] : [])),
  )
  const strings = (x: unknown) => Array.isArray(x) && x.every((s) => typeof s === 'string')
  list.forEach((r: unknown, i: number) => {
    const at = `osRepositories[${i}]`
    if (!isObject(r)) return void problems.push(`${at}: must be an object`)
    if (r.type !== 'apt' && r.type !== 'rpm') problems.push(`${at}.type: must be apt or rpm`)
    if (typeof r.url !== 'string' || r.url === '') problems.push(`${at}.url: must be a non-empty string`)
    if (typeof r.path !== 'string' || !isSafeRelativePath(r.path))
      problems.push(`${at}.path: must be a relative path without empty, . or .. segments`)
    for (const k of ['suites', 'components'] as const)
      if (r[k] !== undefined && !strings(r[k])) problems.push(`${at}.${k}: must be an array of strings`)
    for (const k of ['architectures', 'packages'] as const)
      if (!strings(r[k])) problems.push(`${at}.${k}: must be an array of strings`)
    if (typeof r.key !== 'string' || !packagePaths.has(r.key))
      problems.push(`${at}.key: must be the path of a file listed in files`)
    if (!strings(r.files)) problems.push(`${at}.files: must be an array of strings`)
    else
      for (const f of r.files as string[])
        if (!packagePaths.has(f)) problems.push(`${at}.files: ${f} is not listed in files`)
  })
}

/**
 * A file at a path another file needs as a folder (`x/a` and `x/a/b`): no
 * root or bucket prefix can hold both, as both trees are imported into one.
 * Each such file is named once, with the first file under it.
 */
function fileUnderFileProblems(files: unknown[], problems: string[]): void {
  const listed = files.flatMap((f, i) =>
    isObject(f) && typeof f.path === 'string' && isSafeRelativePath(f.path) ? [{path: f.path, i}] : [],
  )
  /** The first file under each clashing path. */
  const firstUnder = new Map<string, number>()
  for (const [file, under] of folderClashes(listed.map((l) => l.path))) {
    const path = listed[file].path
    firstUnder.set(path, Math.min(firstUnder.get(path) ?? Infinity, listed[under].i))
  }
  for (const {path, i} of listed) {
    const j = firstUnder.get(path)
    if (j !== undefined)
      problems.push(
        `files[${i}].path: ${path} is a file, and a folder for files[${j}] (${(files[j] as {path: string}).path})`,
      )
  }
}

/** `images[i].referrers`: each a descriptor with its subject; listed once; a subject that is the image, its manifests or another referrer is checked by verify. */
function referrerProblems(list: unknown, at: string, problems: string[]): void {
  if (!Array.isArray(list)) return void problems.push(`${at}.referrers: must be an array`)
  const seen = new Set<string>()
  list.forEach((r: unknown, j: number) => {
    const here = `${at}.referrers[${j}]`
    if (!isObject(r)) return void problems.push(`${here}: must be an object`)
    if (typeof r.digest !== 'string' || !isDigest(r.digest)) problems.push(`${here}.digest: must be sha256:<64 hex>`)
    else if (seen.has(r.digest)) problems.push(`${here}.digest: ${r.digest} is listed twice`)
    else seen.add(r.digest)
    if (typeof r.mediaType !== 'string' || r.mediaType === '')
      problems.push(`${here}.mediaType: must be a non-empty string`)
    if (typeof r.artifactType !== 'string' || r.artifactType === '')
      problems.push(`${here}.artifactType: must be a non-empty string`)
    if (!isSize(r.size)) problems.push(`${here}.size: must be a whole number >= 0`)
    if (typeof r.subject !== 'string' || !isDigest(r.subject)) problems.push(`${here}.subject: must be sha256:<64 hex>`)
    if (r.tag !== undefined && (typeof r.tag !== 'string' || !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(r.tag)))
      problems.push(`${here}.tag: must be a tag`)
  })
}

/** `tools`: files beside the archives, each at its own safe path that is none of the bundle's own files. */
function toolProblems(tools: unknown, problems: string[]): void {
  if (!Array.isArray(tools)) return void problems.push('tools: must be an array')
  const reserved = new Set<string>(Object.values(BUNDLE_FILES))
  const paths = new Set<string>()
  tools.forEach((t: unknown, i: number) => {
    const at = `tools[${i}]`
    if (!isObject(t)) return void problems.push(`${at}: must be an object`)
    if (typeof t.path !== 'string' || !isSafeRelativePath(t.path))
      problems.push(`${at}.path: must be a relative path without empty, . or .. segments`)
    else if ([...reserved].some((r) => t.path === r || (t.path as string).startsWith(`${r}.`)))
      problems.push(`${at}.path: ${t.path} is one of the bundle's own files`)
    else if (paths.has(t.path)) problems.push(`${at}.path: ${t.path} is listed twice`)
    else paths.add(t.path)
    if (
      t.platform !== undefined &&
      (typeof t.platform !== 'string' || !/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/.test(t.platform))
    )
      problems.push(`${at}.platform: must be os/arch, e.g. linux/amd64`)
    if (!isSize(t.size)) problems.push(`${at}.size: must be a whole number >= 0`)
    if (typeof t.sha256 !== 'string' || !SHA256_HEX.test(t.sha256))
      problems.push(`${at}.sha256: must be 64 lowercase hex digits`)
    if (t.fromBase !== undefined && t.fromBase !== true) problems.push(`${at}.fromBase: must be true when present`)
  })
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x)
}

function isSize(x: unknown): boolean {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0
}
