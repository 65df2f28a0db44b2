import {folderClashes} from '../content/paths.js'
import {parseReference, ReferenceError} from '../oci/reference.js'
import {ManifestShapes, truncate} from './manifest-shapes.js'
import {chartPath, checkRelativePath, mirroredPath, MirrorPathError} from './mirror-path.js'
import type {TreeMap, TreeNode} from './tree.js'
import type {ChartEntry, PackageEntry, UrlFileEntry} from './types.js'
const CHART_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/
const CHART_VERSION = /^[A-Za-z0-9][A-Za-z0-9.+_-]*$/

/** The file sections of a manifest: `spec.binaries` and `spec.packages` (URL files and charts), each path claimed once per tree. */
export class FileSections extends ManifestShapes {
  protected urlFiles(node: TreeNode, p: string, kind: 'binary' | 'package', claims: PathClaims): UrlFileEntry[] {
    const seq = this.seq(node, p, 'a list of {url, sha256 | checksumUrl, path}')
    if (!seq) return []
    const out: UrlFileEntry[] = []
    seq.items.forEach((item, i) => {
      const e = this.urlFile(item, `${p}[${i}]`, kind, claims)
      if (e) out.push(e)
    })
    return out
  }

  protected urlFile(
    item: TreeNode,
    p: string,
    kind: 'binary' | 'package',
    claims: PathClaims,
    map?: TreeMap,
  ): UrlFileEntry | undefined {
    map ??= this.map(item, p, 'a mapping with url and sha256 or checksumUrl')
    if (!map) return undefined
    const f = this.fields(map, p, ['url', 'sha256', 'checksumUrl', 'path'], ['url'])
    let ok = true
    const url = f.url ? this.url(f.url, `${p}.url`) : undefined
    if (url === undefined) ok = false
    let sha256: string | undefined
    if (f.sha256) {
      sha256 = this.sha256(f.sha256, `${p}.sha256`)
      if (sha256 === undefined) ok = false
    }
    let checksumUrl: string | undefined
    if (f.checksumUrl) {
      checksumUrl = this.url(f.checksumUrl, `${p}.checksumUrl`)
      if (checksumUrl === undefined) ok = false
    }
    // Both: the sha256 is what the file must hash to (as `lock` writes it); checksumUrl says where it came from and is not fetched.
    if (!f.sha256 && !f.checksumUrl) {
      this.add(
        map.off,
        `${p}.sha256`,
        'missing checksum: expected sha256 (64 hex digits) or checksumUrl (a sha256sum file)',
      )
      ok = false
    }
    let filePath: string | undefined
    let pathNode: TreeNode | undefined = f.path
    if (f.path) {
      const s = this.string(f.path, `${p}.path`)
      if (s === undefined) ok = false
      else {
        try {
          filePath = checkRelativePath(s)
        } catch (error) {
          if (!(error instanceof MirrorPathError)) throw error
          this.add(f.path.off, `${p}.path`, `bad path "${s}": ${error.message}`)
          ok = false
        }
      }
    } else if (url !== undefined) {
      try {
        filePath = mirroredPath(url)
        pathNode = f.url
      } catch (error) {
        if (!(error instanceof MirrorPathError)) throw error
        this.add(f.url!.off, `${p}.url`, `${error.message} (give a path: for this file)`)
        ok = false
      }
    }
    if (!ok || url === undefined || filePath === undefined) return undefined
    const where = f.path ? `${p}.path` : `${p}.url`
    if (
      !claims.claim(filePath, {
        off: (pathNode ?? map).off,
        path: where,
        entry: p,
        identity: url,
        what: 'URL',
        content: sha256 ?? checksumUrl!,
      })
    )
      return undefined
    return {
      kind,
      url,
      ...(sha256 ? {sha256} : {}),
      ...(checksumUrl ? {checksumUrl} : {}),
      path: filePath,
      pos: this.pos(map.off),
    }
  }

  protected packages(node: TreeNode, claims: PathClaims): PackageEntry[] {
    const seq = this.seq(node, 'spec.packages', 'a list of {url, sha256 | checksumUrl, path} or {chart: ...}')
    if (!seq) return []
    const out: PackageEntry[] = []
    seq.items.forEach((item, i) => {
      const p = `spec.packages[${i}]`
      const map = this.map(item, p, 'a mapping with url and sha256 or checksumUrl, or with chart')
      if (!map) return
      const isChart = map.pairs.some((pair) => pair.key === 'chart')
      const e = isChart ? this.chart(map, p, claims) : this.urlFile(item, p, 'package', claims, map)
      if (e) out.push(e)
    })
    return out
  }

  protected chart(map: TreeMap, p: string, claims: PathClaims): ChartEntry | undefined {
    const f = this.fields(
      map,
      p,
      ['chart'],
      ['chart'],
      'a chart entry has only chart: {repo, name, version} or chart: {ref, version}',
    )
    const cp = `${p}.chart`
    const c = this.map(f.chart!, cp, 'a mapping {repo, name, version} or {ref, version}')
    if (!c) return undefined
    const g = this.fields(c, cp, ['repo', 'ref', 'name', 'version'], ['version'])
    let ok = true
    let repo: string | undefined
    let ociRef: string | undefined
    let name: string | undefined
    if (g.repo && g.ref) {
      this.add(g.ref.off, `${cp}.ref`, 'give either repo (an HTTP chart repository) or ref (oci://...), not both')
      return undefined
    }
    if (!g.repo && !g.ref) {
      this.add(
        c.off,
        `${cp}.repo`,
        'missing chart source: expected repo (an HTTP chart repository URL) and name, or ref (oci://host/path)',
      )
      ok = false
    }
    if (g.repo) {
      repo = this.url(g.repo, `${cp}.repo`)
      if (repo === undefined) ok = false
      else repo = repo.replace(/\/+$/, '')
      if (!g.name) {
        this.add(c.off, `${cp}.name`, 'missing field: a chart from a repository needs its name')
        ok = false
      }
    }
    if (g.name) {
      if (g.ref) {
        this.add(g.name.off, `${cp}.name`, 'an OCI chart takes its name from ref; drop name')
        ok = false
      } else {
        const s = this.string(g.name, `${cp}.name`)
        if (s !== undefined && !CHART_NAME.test(s)) {
          this.add(g.name.off, `${cp}.name`, `"${s}" is not a chart name: expected letters, digits, . _ and -`)
          ok = false
        } else name = s
      }
    }
    if (g.ref) {
      const s = this.string(g.ref, `${cp}.ref`)
      if (s !== undefined) {
        const r = ociChartRef(s)
        if (typeof r === 'string') {
          this.add(g.ref.off, `${cp}.ref`, r)
          ok = false
        } else {
          ociRef = r.ref
          name = r.name
        }
      } else ok = false
    }
    let version: string | undefined
    if (g.version) {
      const s = this.string(g.version, `${cp}.version`)
      if (s !== undefined && !CHART_VERSION.test(s)) {
        this.add(g.version.off, `${cp}.version`, `"${s}" is not a chart version: expected e.g. 15.1.0`)
      } else version = s
    }
    if (!ok || name === undefined || version === undefined) return undefined
    const filePath = chartPath(name, version)
    const source = repo ?? ociRef!
    if (
      !claims.claim(filePath, {
        off: c.off,
        path: cp,
        entry: p,
        identity: `${source} ${name} ${version}`,
        what: 'chart',
        content: `${source} ${name} ${version}`,
      })
    )
      return undefined
    return {
      kind: 'chart',
      ...(repo ? {repo} : {}),
      ...(ociRef ? {ociRef} : {}),
      name,
      version,
      path: filePath,
      pos: this.pos(c.off),
    }
  }
}

interface Claim {
  off: number
  path: string
  entry: string
  /** What makes two entries the same: the URL, or the chart's source, name and version. */
  identity: string
  what: 'URL' | 'chart'
  /** What makes two files at one path the same content. */
  content: string
}

/**
 * The files of one tree (offline-files or component-tools): a path may be
 * claimed once, a URL listed once, and no file may sit where another
 * entry needs a folder.
 */
export class PathClaims {
  private readonly files = new Map<string, Claim>()
  private readonly urls = new Map<string, Claim>()
  constructor(private readonly v: ManifestShapes) {}

  claim(filePath: string, c: Claim): boolean {
    const sameUrl = this.urls.get(c.identity)
    if (sameUrl) {
      this.v.addClaimProblem(c.off, c.path, `duplicate entry: ${sameUrl.entry} has the same ${c.what}`)
      return false
    }
    const other = this.files.get(filePath)
    if (other) {
      const msg =
        other.content === c.content
          ? `duplicate entry: ${other.entry} maps to the same path "${filePath}"`
          : `${other.entry} maps to the same path "${filePath}" with a different checksum: give one of them a path:`
      this.v.addClaimProblem(c.off, c.path, msg)
      return false
    }
    this.files.set(filePath, c)
    this.urls.set(c.identity, c)
    return true
  }

  /**
   * Both trees are unpacked into one namespace on import (an nginx root, an
   * S3 prefix), so a path both claim must be the same content there, which
   * the importers then write once.
   */
  clashesWith(other: PathClaims): void {
    for (const [p, c] of this.files) {
      const o = other.files.get(p)
      if (o && o.content !== c.content) {
        this.v.addClaimProblem(
          c.off,
          c.path,
          `${o.entry} maps to the same path "${p}" with a different checksum (binaries and packages are imported into one tree): give one of them a path:`,
        )
      }
    }
  }

  /** Report files that other entries need as folders (`a/b` and `a/b/c`). */
  finish(): void {
    const paths = [...this.files.keys()]
    for (const [file, under] of folderClashes(paths)) {
      const c = this.files.get(paths[under])!
      this.v.addClaimProblem(
        c.off,
        c.path,
        `"${paths[file]}" is a file for ${this.files.get(paths[file])!.entry}; it cannot also be a folder`,
      )
    }
  }
}

function ociChartRef(s: string): {ref: string; name: string} | string {
  if (!s.startsWith('oci://')) return `expected oci://host/path, got "${truncate(s)}"`
  const rest = s.slice('oci://'.length)
  const host = rest.split('/')[0]
  if (!rest.includes('/') || !(host.includes('.') || host.includes(':') || host === 'localhost')) {
    return `expected oci://host/path with a registry host, got "${truncate(s)}"`
  }
  let ref
  try {
    ref = parseReference(rest)
  } catch (error) {
    if (!(error instanceof ReferenceError)) throw error
    return `bad OCI chart reference "${truncate(s)}": ${error.message}`
  }
  if (rest.includes('@') || /:[^/]*$/.test(rest.slice(host.length))) {
    return 'the chart reference must not carry a tag or digest: give the version in version'
  }
  return {ref: `oci://${ref.registry}/${ref.repository}`, name: ref.repository.split('/').pop()!}
}
