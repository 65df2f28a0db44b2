import path from 'node:path'

import {closest} from '../closest.js'
import {folderClashes} from '../content/paths.js'
import {PLATFORM_HINT, PLATFORM_RE} from '../oci/platform.js'
import {formatReference, type ImageReference, isRegistryHost, normalizeRegistryHost, parseReference, ReferenceError} from '../oci/reference.js'
import {chartPath, checkRelativePath, MirrorPathError, mirroredBase, mirroredPath} from './mirror-path.js'
import {checkRegex, checkSemverRange, TAG_RULE_KEYS, type TagSelection} from './tag-selection.js'
import type {TreeMap, TreeNode, TreeSeq} from './tree.js'
import {aptArchitectures, rpmArchitectures} from './os-arch.js'
import type {ChartEntry, ImageEntry, ImageSelection, Manifest, OsPackageEntry, PackageEntry, ReferrerSelection, RegistrySettings, RepositorySelection, SourcePos, UrlFileEntry} from './types.js'

/** A media type (RFC 6838 type/subtype, as artifactType holds). */
const MEDIA_TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/

/** A problem before it has a line and column: the offset in the text it points at. */
export interface RawProblem {
  off: number
  path: string
  message: string
}

export const API_VERSION = 'airlock/v1'
export const KIND = 'Manifest'
export const DEFAULT_PLATFORMS = ['linux/amd64']

const NAME = /^[a-z0-9][a-z0-9.-]*$/
const SHA256 = /^[0-9a-fA-F]{64}$/
const CHART_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/
const CHART_VERSION = /^[A-Za-z0-9][A-Za-z0-9.+_-]*$/
/** Debian policy 5.6.1 (package names), with an optional `:arch` qualifier. */
const APT_PACKAGE = /^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?$/
/** rpm names: letters, digits and `._+-`; no spaces, no version. */
const RPM_PACKAGE = /^[A-Za-z0-9_][A-Za-z0-9._+-]*$/
/** A suite, component or architecture name (`bookworm`, `bookworm-updates`, `main`, `amd64`); `/` for suites such as `stable/updates`. */
const APT_WORD = /^[A-Za-z0-9][A-Za-z0-9._+-]*(\/[A-Za-z0-9][A-Za-z0-9._+-]*)*$/
const OS_TYPES = ['apt', 'rpm'] as const
const APT_FIELDS = ['type', 'url', 'suites', 'components', 'architectures', 'keyring', 'packages', 'recommends']
const RPM_FIELDS = ['type', 'url', 'gpgKey', 'architectures', 'packages']

/**
 * Check the parsed document against manifest v1 and build the normalized
 * Manifest. Collects every problem instead of stopping at the first one.
 * `dir` is the manifest's folder, for relative `caFile` paths.
 */
export function validateTree(
  root: TreeNode,
  file: string,
  dir: string,
  pos: (off: number) => SourcePos,
): {manifest: Manifest; problems: RawProblem[]} {
  const v = new Validator(dir, pos)
  const manifest = v.document(root, file)
  return {manifest, problems: v.problems}
}

class Validator {
  readonly problems: RawProblem[] = []
  private readonly selections: ImageSelection[] = []
  constructor(
    private readonly dir: string,
    private readonly pos: (off: number) => SourcePos,
  ) {}

  private add(off: number, p: string, message: string): void {
    this.problems.push({off, path: p, message})
  }

  document(root: TreeNode, file: string): Manifest {
    const manifest: Manifest = {
      file,
      dir: this.dir,
      name: '',
      platforms: [...DEFAULT_PLATFORMS],
      registries: [],
      referrers: 'all',
      images: [],
      selections: [],
      repositories: [],
      binaries: [],
      packages: [],
    }
    const top = this.map(root, '', 'a mapping with apiVersion, kind, metadata and spec')
    if (!top) return manifest
    const f = this.fields(top, '', ['apiVersion', 'kind', 'metadata', 'spec'], ['apiVersion', 'kind', 'metadata', 'spec'])
    const apiVersion = f.apiVersion && this.string(f.apiVersion, 'apiVersion')
    if (apiVersion !== undefined && apiVersion !== API_VERSION) {
      this.add(f.apiVersion!.off, 'apiVersion', `expected "${API_VERSION}", got "${apiVersion}"`)
    }
    const kind = f.kind && this.string(f.kind, 'kind')
    if (kind !== undefined && kind !== KIND) this.add(f.kind!.off, 'kind', `expected "${KIND}", got "${kind}"`)
    if (f.metadata) this.metadata(f.metadata, manifest)
    if (f.spec) this.spec(f.spec, manifest)
    return manifest
  }

  private metadata(node: TreeNode, m: Manifest): void {
    const map = this.map(node, 'metadata', 'a mapping with name and version')
    if (!map) return
    const f = this.fields(map, 'metadata', ['name', 'version'], ['name'])
    if (f.name) {
      const name = this.string(f.name, 'metadata.name')
      if (name !== undefined) {
        if (!NAME.test(name) || name.length > 253) {
          this.add(f.name.off, 'metadata.name', `"${name}" is not a valid name: expected lowercase letters, digits, . and -, starting with a letter or digit`)
        } else {
          m.name = name
        }
      }
    }
    if (f.version) {
      const version = this.string(f.version, 'metadata.version')
      if (version !== undefined) {
        if (version === '') this.add(f.version.off, 'metadata.version', 'expected a non-empty string')
        else m.version = version
      }
    }
  }

  private spec(node: TreeNode, m: Manifest): void {
    const map = this.map(node, 'spec', 'a mapping with platforms, registries, referrers, images, repositories, binaries and packages')
    if (!map) return
    const f = this.fields(map, 'spec', ['platforms', 'registries', 'referrers', 'images', 'repositories', 'binaries', 'packages', 'osPackages'], [])
    if (f.platforms) {
      const platforms = this.platforms(f.platforms, 'spec.platforms', false)
      if (platforms && platforms !== 'all') m.platforms = platforms
    }
    if (f.registries) m.registries = this.registries(f.registries)
    if (f.referrers) m.referrers = this.referrers(f.referrers) ?? m.referrers
    if (f.images) m.images = this.images(f.images, m.platforms)
    m.selections = this.selections
    if (f.repositories) m.repositories = this.repositories(f.repositories, m.platforms)
    const files = new PathClaims(this)
    if (f.binaries) m.binaries = this.urlFiles(f.binaries, 'spec.binaries', 'binary', files)
    files.finish()
    const packages = new PathClaims(this)
    if (f.packages) m.packages = this.packages(f.packages, packages)
    packages.finish()
    packages.clashesWith(files)
    if (f.osPackages) m.osPackages = this.osPackages(f.osPackages, m.platforms)
  }

  /** `spec.osPackages`: apt and rpm repositories and the packages to take from them (docs/os-packages.md). */
  private osPackages(node: TreeNode, platforms: string[]): OsPackageEntry[] {
    const seq = this.seq(node, 'spec.osPackages', 'a list of {type: apt | rpm, url, packages, ...}')
    if (!seq) return []
    const out: OsPackageEntry[] = []
    /** One URL is one mirrored folder: its entries must agree on how a node checks it. */
    const keyOfUrl = new Map<string, {type: string; key: string; entry: string}>()
    const suites = new Map<string, string>()
    seq.items.forEach((item, i) => {
      const p = `spec.osPackages[${i}]`
      const map = this.map(item, p, 'a mapping with type, url and packages')
      if (!map) return
      const typeNode = map.pairs.find((pair) => pair.key === 'type')?.value
      const typeName = typeNode ? this.string(typeNode, `${p}.type`) : undefined
      if (!typeNode) {
        this.add(map.off, `${p}.type`, 'missing required field "type": expected apt or rpm')
        return
      }
      if (typeName === undefined) return
      if (!(OS_TYPES as readonly string[]).includes(typeName)) {
        const near = closest(typeName, [...OS_TYPES])
        this.add(typeNode.off, `${p}.type`, `unknown type "${typeName}": ${near ? `did you mean "${near}"?` : 'expected apt or rpm'}`)
        return
      }
      const type = typeName as OsPackageEntry['type']
      const f = this.fields(map, p, type === 'apt' ? APT_FIELDS : RPM_FIELDS, type === 'apt' ? ['url', 'suites', 'keyring', 'packages'] : ['url', 'gpgKey', 'packages'])
      let ok = true
      const url = f.url ? this.url(f.url, `${p}.url`)?.replace(/\/+$/, '') : undefined
      let base: string | undefined
      if (url !== undefined) {
        try {
          base = mirroredBase(url)
        } catch (error) {
          if (!(error instanceof MirrorPathError)) throw error
          this.add(f.url!.off, `${p}.url`, error.message)
        }
      }
      const packages = f.packages ? this.words(f.packages, `${p}.packages`, type === 'apt' ? APT_PACKAGE : RPM_PACKAGE, 'a package name') : undefined
      const defaults = type === 'apt' ? aptArchitectures(platforms) : rpmArchitectures(platforms)
      let architectures = f.architectures ? this.words(f.architectures, `${p}.architectures`, APT_WORD, 'an architecture') : defaults
      if (type === 'rpm' && architectures && !architectures.includes('noarch')) architectures = [...architectures, 'noarch']
      if (architectures && architectures.length === 0) {
        this.add(map.off, `${p}.architectures`, `no ${type} architecture for spec.platforms (${platforms.join(', ')}): give architectures`)
        ok = false
      }
      const keyField = type === 'apt' ? 'keyring' : 'gpgKey'
      const keyNode = type === 'apt' ? f.keyring : f.gpgKey
      let key: string | undefined
      if (keyNode) {
        const k = this.string(keyNode, `${p}.${keyField}`)
        if (k === '') this.add(keyNode.off, `${p}.${keyField}`, 'expected a file path (OpenPGP public key, binary or armored)')
        else if (k !== undefined) key = path.resolve(this.dir, k)
      }
      if (url !== undefined && key !== undefined) {
        const other = keyOfUrl.get(url)
        if (other && (other.type !== type || other.key !== key)) {
          this.add(keyNode!.off, `${p}.${keyField}`, `${other.entry} names the same url with ${other.type === type ? `another ${keyField}` : `type ${other.type}`}: one repository is checked with one key`)
          ok = false
        } else if (!other) keyOfUrl.set(url, {type, key, entry: p})
      }
      if (!ok || url === undefined || base === undefined || key === undefined || !packages || !architectures) return
      const common = {url, path: base, architectures, packages, field: p, pos: this.pos(map.off)}
      if (type === 'rpm') {
        out.push({type, ...common, gpgKey: key})
        return
      }
      const suiteList = f.suites ? this.words(f.suites, `${p}.suites`, APT_WORD, 'a suite') : undefined
      const components = f.components ? this.words(f.components, `${p}.components`, APT_WORD, 'a component') : ['main']
      let recommends = false
      if (f.recommends) {
        const b = this.boolean(f.recommends, `${p}.recommends`)
        if (b === undefined) return
        recommends = b
      }
      if (!suiteList || !components) return
      for (const [k, suite] of suiteList.entries()) {
        const id = `${url} ${suite}`
        const first = suites.get(id)
        if (first !== undefined) {
          this.add(f.suites!.kind === 'seq' ? f.suites!.items[k].off : f.suites!.off, `${p}.suites[${k}]`, `suite ${suite} of ${url} is also in ${first}: list its packages in one entry`)
          return
        }
        suites.set(id, p)
      }
      out.push({type, ...common, suites: suiteList, components, keyring: key, recommends})
    })
    return out
  }

  /** A non-empty list of distinct strings, each matching `re`. */
  private words(node: TreeNode, p: string, re: RegExp, what: string): string[] | undefined {
    const seq = this.seq(node, p, `a list of names`)
    if (!seq) return undefined
    if (seq.items.length === 0) {
      this.add(seq.off, p, `expected at least one name`)
      return undefined
    }
    const out: string[] = []
    let ok = true
    seq.items.forEach((item, i) => {
      const ip = `${p}[${i}]`
      const s = this.string(item, ip)
      if (s === undefined) ok = false
      else if (!re.test(s)) {
        this.add(item.off, ip, `"${truncate(s)}" is not ${what}`)
        ok = false
      } else if (out.includes(s)) {
        this.add(item.off, ip, `duplicate "${s}" (also ${p}[${out.indexOf(s)}])`)
        ok = false
      } else out.push(s)
    })
    return ok ? out : undefined
  }

  private platforms(node: TreeNode, p: string, allowAll: boolean): string[] | 'all' | undefined {
    const seq = this.seq(node, p, allowAll ? 'a list of os/arch[/variant], or [all]' : 'a list of os/arch[/variant]')
    if (!seq) return undefined
    if (seq.items.length === 0) {
      this.add(seq.off, p, 'expected at least one platform')
      return undefined
    }
    const out: string[] = []
    const seen = new Map<string, number>()
    let ok = true
    let sawAll = false
    seq.items.forEach((item, i) => {
      const ip = `${p}[${i}]`
      const s = this.string(item, ip)
      if (s === undefined) {
        ok = false
        return
      }
      if (s === 'all') {
        if (!allowAll) {
          this.add(item.off, ip, '"all" is only allowed in an image entry\'s platforms; list the platforms here')
          ok = false
        }
        sawAll = true
        return
      }
      if (!PLATFORM_RE.test(s)) {
        this.add(item.off, ip, `"${s}" is not a platform: ${PLATFORM_HINT}`)
        ok = false
        return
      }
      const first = seen.get(s)
      if (first !== undefined) {
        this.add(item.off, ip, `duplicate platform "${s}" (also ${p}[${first}])`)
        ok = false
        return
      }
      seen.set(s, i)
      out.push(s)
    })
    if (sawAll && allowAll) {
      if (seq.items.length > 1) {
        this.add(seq.off, p, '"all" keeps every platform and cannot be combined with others')
        return undefined
      }
      return 'all'
    }
    return ok ? out : undefined
  }

  /** `spec.referrers`: `all` (the default), `none`, or a list of artifact types (media types) to keep. */
  private referrers(node: TreeNode): ReferrerSelection | undefined {
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
      if (!MEDIA_TYPE_RE.test(s)) this.add(item.off, ip, `"${s}" is not an artifact type: expected a media type such as application/vnd.cyclonedx+json`)
      else if (types.includes(s)) this.add(item.off, ip, `duplicate artifact type "${s}" (also ${p}[${types.indexOf(s)}])`)
      else types.push(s)
    })
    return types.length === seq.items.length ? {artifactTypes: types} : undefined
  }

  private registries(node: TreeNode): RegistrySettings[] {
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
            this.add(f.host.off, `${p}.host`, `expected host[:port] without a scheme, e.g. ${h.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').replace(/\/.*$/, '')}`)
          } else if (!isRegistryHost(h)) {
            this.add(f.host.off, `${p}.host`, `"${h}" is not a registry host: expected host or host:port`)
          } else {
            host = normalizeRegistryHost(h.toLowerCase())
            const first = seen.get(host)
            if (first !== undefined) this.add(f.host.off, `${p}.host`, `duplicate registry "${host}" (also spec.registries[${first}])`)
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

  private images(node: TreeNode, defaults: string[]): ImageEntry[] {
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
        this.add(item.off, p, `expected an image reference, a mapping with ref and platforms, or one with repository and tags, got ${describe(item)}`)
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
      const latestAssumed = !s.includes('@') && s.lastIndexOf(':') < s.lastIndexOf('/') + 1 ? {latestAssumed: refPath} : {}
      out.push({name, ref, platforms: platforms ?? [...defaults], pos: this.pos(refNode.off), ...latestAssumed})
    })
    return out
  }

  /** `{repository, tags, platforms}`: a repository and which of its tags to take. */
  private imageSelection(map: TreeMap, p: string, defaults: string[]): ImageSelection | undefined {
    const f = this.fields(map, p, ['repository', 'tags', 'platforms', 'ref'], ['repository', 'tags'])
    if (f.ref) {
      this.add(f.ref.off, `${p}.ref`, 'give either ref (one image) or repository with tags (a selection of its tags), not both')
      return undefined
    }
    let ok = true
    let ref: ImageReference | undefined
    const s = this.string(f.repository!, `${p}.repository`)
    if (s !== undefined) {
      try {
        ref = parseReference(s)
        if (ref.digest || s.lastIndexOf(':') > s.lastIndexOf('/')) {
          this.add(f.repository!.off, `${p}.repository`, `"${s}" names a tag or digest: a repository is host/path, and tags: says which tags to take`)
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
  private tagSelection(node: TreeNode, p: string): TagSelection | undefined {
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
        this.add(f.latest.off, `${p}.latest`, `expected a whole number of at least 1 (how many of the highest versions to keep), got ${describe(f.latest)}`)
        ok = false
      } else out.latest = n
    }
    return ok ? out : undefined
  }

  /** `spec.repositories`: whole repositories from a registry's catalog. */
  private repositories(node: TreeNode, defaults: string[]): RepositorySelection[] {
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
          this.add(f.registry.off, `${p}.registry`, `"${h}" is not a registry host: expected host or host:port, without a scheme or path`)
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

  private urlFiles(node: TreeNode, p: string, kind: 'binary' | 'package', claims: PathClaims): UrlFileEntry[] {
    const seq = this.seq(node, p, 'a list of {url, sha256 | checksumUrl, path}')
    if (!seq) return []
    const out: UrlFileEntry[] = []
    seq.items.forEach((item, i) => {
      const e = this.urlFile(item, `${p}[${i}]`, kind, claims)
      if (e) out.push(e)
    })
    return out
  }

  private urlFile(item: TreeNode, p: string, kind: 'binary' | 'package', claims: PathClaims, map?: TreeMap): UrlFileEntry | undefined {
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
      this.add(map.off, `${p}.sha256`, 'missing checksum: expected sha256 (64 hex digits) or checksumUrl (a sha256sum file)')
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
    if (!claims.claim(filePath, {off: (pathNode ?? map).off, path: where, entry: p, identity: url, what: 'URL', content: sha256 ?? checksumUrl!})) return undefined
    return {kind, url, ...(sha256 ? {sha256} : {}), ...(checksumUrl ? {checksumUrl} : {}), path: filePath, pos: this.pos(map.off)}
  }

  private packages(node: TreeNode, claims: PathClaims): PackageEntry[] {
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

  private chart(map: TreeMap, p: string, claims: PathClaims): ChartEntry | undefined {
    const f = this.fields(map, p, ['chart'], ['chart'], 'a chart entry has only chart: {repo, name, version} or chart: {ref, version}')
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
      this.add(c.off, `${cp}.repo`, 'missing chart source: expected repo (an HTTP chart repository URL) and name, or ref (oci://host/path)')
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
    if (!claims.claim(filePath, {off: c.off, path: cp, entry: p, identity: `${source} ${name} ${version}`, what: 'chart', content: `${source} ${name} ${version}`})) return undefined
    return {kind: 'chart', ...(repo ? {repo} : {}), ...(ociRef ? {ociRef} : {}), name, version, path: filePath, pos: this.pos(c.off)}
  }

  // ---- shapes and scalars ----

  map(node: TreeNode, p: string, expected: string): TreeMap | undefined {
    if (node.kind === 'map') return node
    this.add(node.off, p, `expected ${expected}, got ${describe(node)}`)
    return undefined
  }

  private seq(node: TreeNode, p: string, expected: string): TreeSeq | undefined {
    if (node.kind === 'seq') return node
    this.add(node.off, p, `expected ${expected}, got ${describe(node)}`)
    return undefined
  }

  /** The known fields of a mapping; reports unknown and missing ones. */
  private fields<K extends string>(map: TreeMap, p: string, known: K[], required: K[], unknownHint?: string): Partial<Record<K, TreeNode>> {
    const out: Partial<Record<K, TreeNode>> = {}
    for (const pair of map.pairs) {
      const fp = p ? `${p}.${pair.key}` : pair.key
      if ((known as string[]).includes(pair.key)) {
        out[pair.key as K] = pair.value
        continue
      }
      const near = closest(pair.key, known)
      const hint = unknownHint ?? (near ? `did you mean "${near}"?` : `expected one of: ${known.join(', ')}`)
      this.add(pair.keyOff, fp, `unknown field "${pair.key}": ${hint}`)
    }
    for (const k of required) {
      if (out[k] === undefined) this.add(map.off, p ? `${p}.${k}` : k, `missing required field "${k}"`)
    }
    return out
  }

  private string(node: TreeNode, p: string): string | undefined {
    if (node.kind === 'scalar' && typeof node.value === 'string') return node.value
    if (node.kind === 'scalar' && node.value !== null && node.plain) {
      this.add(node.off, p, `expected a string, got ${describe(node)} (quote it: "${node.source}")`)
    } else {
      this.add(node.off, p, `expected a string, got ${describe(node)}`)
    }
    return undefined
  }

  private boolean(node: TreeNode, p: string): boolean | undefined {
    if (node.kind === 'scalar' && typeof node.value === 'boolean') return node.value
    this.add(node.off, p, `expected true or false, got ${describe(node)}`)
    return undefined
  }

  private url(node: TreeNode, p: string): string | undefined {
    const s = this.string(node, p)
    if (s === undefined) return undefined
    const problem = checkUrl(s)
    if (problem) {
      this.add(node.off, p, problem)
      return undefined
    }
    return s
  }

  private sha256(node: TreeNode, p: string): string | undefined {
    // A checksum made only of digits (or digits and one e) is a number to YAML; take it as written.
    const s = node.kind === 'scalar' && node.plain && typeof node.value === 'number' ? node.source : node.kind === 'scalar' && typeof node.value === 'string' ? node.value : undefined
    if (s === undefined) {
      this.add(node.off, p, `expected a sha256 (64 hex digits), got ${describe(node)}`)
      return undefined
    }
    if (!SHA256.test(s)) {
      const why = s.startsWith('sha256:') ? ' (without the sha256: prefix)' : ` (got ${s.length} characters${/[^0-9a-fA-F]/.test(s) ? ', not all hex' : ''})`
      this.add(node.off, p, `bad sha256 "${truncate(s)}": expected 64 hex digits${why}`)
      return undefined
    }
    return s.toLowerCase()
  }

  addClaimProblem(off: number, p: string, message: string): void {
    this.add(off, p, message)
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
class PathClaims {
  private readonly files = new Map<string, Claim>()
  private readonly urls = new Map<string, Claim>()
  constructor(private readonly v: Validator) {}

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
        this.v.addClaimProblem(c.off, c.path, `${o.entry} maps to the same path "${p}" with a different checksum (binaries and packages are imported into one tree): give one of them a path:`)
      }
    }
  }

  /** Report files that other entries need as folders (`a/b` and `a/b/c`). */
  finish(): void {
    const paths = [...this.files.keys()]
    for (const [file, under] of folderClashes(paths)) {
      const c = this.files.get(paths[under])!
      this.v.addClaimProblem(c.off, c.path, `"${paths[file]}" is a file for ${this.files.get(paths[file])!.entry}; it cannot also be a folder`)
    }
  }
}

/** undefined when the URL is acceptable, else why not. */
export function checkUrl(s: string): string | undefined {
  let u: URL
  try {
    u = new URL(s)
  } catch {
    return `"${truncate(s)}" is not a URL: expected http:// or https://`
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return `expected an http:// or https:// URL, got ${u.protocol}//`
  if (u.username || u.password) {
    return 'credentials inside a URL are refused (they would end up in the store and the bundle): pass them with flags or the Docker config'
  }
  if (!u.hostname) return 'the URL names no host'
  return undefined
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

function describe(node: TreeNode): string {
  if (node.kind === 'map') return 'a mapping'
  if (node.kind === 'seq') return 'a list'
  if (node.value === null) return 'nothing'
  if (typeof node.value === 'number') return `the number ${node.source || node.value}`
  if (typeof node.value === 'boolean') return `${node.value}`
  return `"${truncate(node.value)}"`
}

function truncate(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s
}

