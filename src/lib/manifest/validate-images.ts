import path from 'node:path'

import {
  formatReference,
  type ImageReference,
  isRegistryHost,
  normalizeRegistryHost,
  parseReference,
  ReferenceError,
} from '../oci/reference.js'
import {describe} from './manifest-shapes.js'
import {checkRegex, checkSemverRange, TAG_RULE_KEYS, type TagSelection} from './tag-selection.js'
import type {TreeMap, TreeNode} from './tree.js'
import type {ImageEntry, ImageSelection, ReferrerSelection, RegistrySettings, RepositorySelection} from './types.js'
import {FileSections} from './validate-files.js'
/** A media type (RFC 6838 type/subtype, as artifactType holds). */
const MEDIA_TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/

/** The image sections of a manifest: `spec.registries`, `spec.referrers`, `spec.images` (with tag selections) and `spec.repositories`. */
export class ImageSections extends FileSections {
  protected readonly selections: ImageSelection[] = []

  /** `spec.referrers`: `all` (the default), `none`, or a list of artifact types (media types) to keep. */
  protected referrers(node: TreeNode): ReferrerSelection | undefined {
    const p = 'spec.referrers'
    if (node.kind === 'scalar') {
      const s = this.string(node, p)
      if (s === 'all' || s === 'none') return s
      if (s !== undefined) this.add(node.off, p, `expected all, none or a list of artifact types, got "${s}"`)
      return undefined
    }
    const seq = this.seq(node, p, 'all, none or a list of artifact types')
    if (!seq) return undefined
    if (seq.items.length === 0) {
      this.add(seq.off, p, 'expected at least one artifact type (or none)')
      return undefined
    }
    const types: string[] = []
    seq.items.forEach((item, i) => {
      const ip = `${p}[${i}]`
      const s = this.string(item, ip)
      if (s === undefined) return
      if (!MEDIA_TYPE_RE.test(s))
        this.add(
          item.off,
          ip,
          `"${s}" is not an artifact type: expected a media type such as application/vnd.cyclonedx+json`,
        )
      else if (types.includes(s))
        this.add(item.off, ip, `duplicate artifact type "${s}" (also ${p}[${types.indexOf(s)}])`)
      else types.push(s)
    })
    return types.length === seq.items.length ? {artifactTypes: types} : undefined
  }

  protected registries(node: TreeNode): RegistrySettings[] {
    const seq = this.seq(node, 'spec.registries', 'a list of {host, insecure, caFile}')
    if (!seq) return []
    const out: RegistrySettings[] = []
    const seen = new Map<string, number>()
    seq.items.forEach((item, i) => {
      const p = `spec.registries[${i}]`
      const map = this.map(item, p, 'a mapping with host, insecure and caFile')
      if (!map) return
      const f = this.fields(map, p, ['host', 'insecure', 'caFile'], ['host'])
      let host: string | undefined
      if (f.host) {
        const h = this.string(f.host, `${p}.host`)
        if (h !== undefined) {
          if (/^[a-z][a-z0-9+.-]*:\/\//i.test(h)) {
            this.add(
              f.host.off,
              `${p}.host`,
              `expected host[:port] without a scheme, e.g. ${h.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').replace(/\/.*$/, '')}`,
            )
          } else if (!isRegistryHost(h)) {
            this.add(f.host.off, `${p}.host`, `"${h}" is not a registry host: expected host or host:port`)
          } else {
            host = normalizeRegistryHost(h.toLowerCase())
            const first = seen.get(host)
            if (first !== undefined)
              this.add(f.host.off, `${p}.host`, `duplicate registry "${host}" (also spec.registries[${first}])`)
            else seen.set(host, i)
          }
        }
      }
      let insecure = false
      if (f.insecure) {
        const b = this.boolean(f.insecure, `${p}.insecure`)
        if (b !== undefined) insecure = b
      }
      let caFile: string | undefined
      if (f.caFile) {
        const c = this.string(f.caFile, `${p}.caFile`)
        if (c !== undefined) {
          if (c === '') this.add(f.caFile.off, `${p}.caFile`, 'expected a file path')
          else caFile = path.resolve(this.dir, c)
        }
      }
      if (host !== undefined) out.push({host, insecure, ...(caFile === undefined ? {} : {caFile})})
    })
    return out
  }

  protected images(node: TreeNode, defaults: string[]): ImageEntry[] {
    const seq = this.seq(node, 'spec.images', 'a list of image references')
    if (!seq) return []
    const out: ImageEntry[] = []
    const seen = new Map<string, number>()
    seq.items.forEach((item, i) => {
      const p = `spec.images[${i}]`
      let refNode: TreeNode | undefined
      let platforms: string[] | 'all' | undefined
      let platformsOk = true
      if (item.kind === 'map' && item.pairs.some((pair) => pair.key === 'repository')) {
        const sel = this.imageSelection(item, p, defaults)
        if (sel) this.selections.push(sel)
        return
      }
      if (item.kind === 'map') {
        const f = this.fields(item, p, ['ref', 'platforms'], ['ref'])
        refNode = f.ref
        if (f.platforms) {
          platforms = this.platforms(f.platforms, `${p}.platforms`, true)
          platformsOk = platforms !== undefined
        }
      } else if (item.kind === 'scalar' && typeof item.value === 'string') {
        refNode = item
      } else {
        this.add(
          item.off,
          p,
          `expected an image reference, a mapping with ref and platforms, or one with repository and tags, got ${describe(item)}`,
        )
        return
      }
      if (!refNode) return
      const refPath = item.kind === 'map' ? `${p}.ref` : p
      const s = this.string(refNode, refPath)
      if (s === undefined) return
      let ref
      try {
        ref = parseReference(s)
      } catch (error) {
        if (!(error instanceof ReferenceError)) throw error
        this.add(refNode.off, refPath, `bad image reference "${s}": ${error.message}`)
        return
      }
      const name = formatReference(ref)
      const first = seen.get(name)
      if (first !== undefined) {
        this.add(refNode.off, refPath, `duplicate image ${name} (also spec.images[${first}])`)
        return
      }
      seen.set(name, i)
      if (!platformsOk) return
      // Neither `@digest` nor a `:tag` after the last `/` (a `:` before it is a registry's port).
      const latestAssumed =
        !s.includes('@') && s.lastIndexOf(':') < s.lastIndexOf('/') + 1 ? {latestAssumed: refPath} : {}
      out.push({name, ref, platforms: platforms ?? [...defaults], pos: this.pos(refNode.off), ...latestAssumed})
    })
    return out
  }

  /** `{repository, tags, platforms}`: a repository and which of its tags to take. */
  protected imageSelection(map: TreeMap, p: string, defaults: string[]): ImageSelection | undefined {
    const f = this.fields(map, p, ['repository', 'tags', 'platforms', 'ref'], ['repository', 'tags'])
    if (f.ref) {
      this.add(
        f.ref.off,
        `${p}.ref`,
        'give either ref (one image) or repository with tags (a selection of its tags), not both',
      )
      return undefined
    }
    let ok = true
    let ref: ImageReference | undefined
    const s = this.string(f.repository!, `${p}.repository`)
    if (s !== undefined) {
      try {
        ref = parseReference(s)
        if (ref.digest || s.lastIndexOf(':') > s.lastIndexOf('/')) {
          this.add(
            f.repository!.off,
            `${p}.repository`,
            `"${s}" names a tag or digest: a repository is host/path, and tags: says which tags to take`,
          )
          ok = false
        }
      } catch (error) {
        if (!(error instanceof ReferenceError)) throw error
        this.add(f.repository!.off, `${p}.repository`, `bad repository "${s}": ${error.message}`)
        ok = false
      }
    } else ok = false
    const tags = f.tags && this.tagSelection(f.tags, `${p}.tags`)
    let platforms: string[] | 'all' | undefined
    if (f.platforms) {
      platforms = this.platforms(f.platforms, `${p}.platforms`, true)
      if (platforms === undefined) ok = false
    }
    if (!ok || !ref || !tags) return undefined
    return {
      registry: ref.registry,
      repository: ref.repository,
      tags,
      platforms: platforms ?? [...defaults],
      field: p,
      pos: this.pos(f.tags!.off),
    }
  }

  /** `all`, or a mapping of semver, regex, exclude and latest. */
  protected tagSelection(node: TreeNode, p: string): TagSelection | undefined {
    if (node.kind === 'scalar' && node.value === 'all') return 'all'
    const map = this.map(node, p, 'all, or a mapping with semver, regex, exclude and latest')
    if (!map) return undefined
    if (map.pairs.length === 0) {
      this.add(map.off, p, 'expected at least one of semver, regex, exclude and latest (or tags: all)')
      return undefined
    }
    const f = this.fields(map, p, [...TAG_RULE_KEYS], [])
    const out: TagSelection = {}
    let ok = Object.keys(f).length === map.pairs.length
    if (f.semver) {
      const r = this.string(f.semver, `${p}.semver`)
      const problem = r === undefined ? undefined : checkSemverRange(r)
      if (problem) this.add(f.semver.off, `${p}.semver`, problem)
      if (r === undefined || problem) ok = false
      else out.semver = r
    }
    for (const k of ['regex', 'exclude'] as const) {
      const node = f[k]
      if (!node) continue
      const r = this.string(node, `${p}.${k}`)
      const problem = r === undefined ? undefined : checkRegex(r)
      if (problem) this.add(node.off, `${p}.${k}`, problem)
      if (r === undefined || problem) ok = false
      else out[k] = r
    }
    if (f.latest) {
      const n = f.latest.kind === 'scalar' ? f.latest.value : undefined
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) {
        this.add(
          f.latest.off,
          `${p}.latest`,
          `expected a whole number of at least 1 (how many of the highest versions to keep), got ${describe(f.latest)}`,
        )
        ok = false
      } else out.latest = n
    }
    return ok ? out : undefined
  }

  /** `spec.repositories`: whole repositories from a registry's catalog. */
  protected repositories(node: TreeNode, defaults: string[]): RepositorySelection[] {
    const seq = this.seq(node, 'spec.repositories', 'a list of {registry, include, exclude, tags}')
    if (!seq) return []
    const out: RepositorySelection[] = []
    seq.items.forEach((item, i) => {
      const p = `spec.repositories[${i}]`
      const map = this.map(item, p, 'a mapping with registry, include, exclude and tags')
      if (!map) return
      const f = this.fields(map, p, ['registry', 'include', 'exclude', 'tags', 'platforms'], ['registry', 'tags'])
      let ok = true
      let registry: string | undefined
      if (f.registry) {
        const h = this.string(f.registry, `${p}.registry`)
        if (h !== undefined && (/^[a-z][a-z0-9+.-]*:\/\//i.test(h) || !isRegistryHost(h))) {
          this.add(
            f.registry.off,
            `${p}.registry`,
            `"${h}" is not a registry host: expected host or host:port, without a scheme or path`,
          )
        } else if (h !== undefined) registry = normalizeRegistryHost(h.toLowerCase())
      }
      const patterns: {include?: string; exclude?: string} = {}
      for (const k of ['include', 'exclude'] as const) {
        const n = f[k]
        if (!n) continue
        const r = this.string(n, `${p}.${k}`)
        const problem = r === undefined ? undefined : checkRegex(r)
        if (problem) this.add(n.off, `${p}.${k}`, problem)
        if (r === undefined || problem) ok = false
        else patterns[k] = r
      }
      const tags = f.tags && this.tagSelection(f.tags, `${p}.tags`)
      let platforms: string[] | 'all' | undefined
      if (f.platforms) {
        platforms = this.platforms(f.platforms, `${p}.platforms`, true)
        if (platforms === undefined) ok = false
      }
      if (!ok || registry === undefined || !tags) return
      out.push({
        registry,
        ...patterns,
        tags,
        platforms: platforms ?? [...defaults],
        field: p,
        pos: this.pos(map.off),
      })
    })
    return out
  }
}
