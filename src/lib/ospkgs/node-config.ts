/**
 * What a node needs to use a mirrored repository, per type: the key file
 * carried beside the repository, and the source file (apt `.list`, rpm
 * `.repo`) that `import nginx` writes beside it and prints. Light on
 * purpose: importers load it without the resolvers' libraries.
 */
import type {LockOsRepository} from '../bundle-json.js'
import type {OsPackageType} from '../manifest/types.js'

export interface NodeConfigSupport {
  /** Appended to the repository's mirrored base path to name its key file: `deb.debian.org/debian` + `.gpg`. */
  keySuffix: string
  /** Whether the key file is OpenPGP armor (rpm's gpgkey=) or binary (apt's signed-by). */
  armoredKey: boolean
  /** Appended to the mirrored base path to name the source file import writes. */
  sourceSuffix: string
  /**
   * The source file's text for the repositories at one base path, as served
   * at `baseUrl` (no trailing slash), with the key served at `keyUrl`.
   */
  render(repos: LockOsRepository[], baseUrl: string, keyUrl: string): string
}

/** A name for the key on the node, from the mirrored path: `deb.debian.org/debian` -> `deb.debian.org-debian`. */
export function nodeKeyName(path: string): string {
  return path.replace(/[^A-Za-z0-9._-]+/g, '-')
}

const apt: NodeConfigSupport = {
  keySuffix: '.gpg',
  armoredKey: false,
  sourceSuffix: '.list',
  render(repos, baseUrl, keyUrl) {
    const keyring = `/etc/apt/keyrings/${nodeKeyName(repos[0].path)}.gpg`
    const lines = [
      `# ${repos[0].url}, mirrored by airlock. On the node:`,
      `#   install -d /etc/apt/keyrings && curl -fsSLo ${keyring} ${keyUrl}`,
      `#   this file as /etc/apt/sources.list.d/${nodeKeyName(repos[0].path)}.list`,
    ]
    for (const r of repos)
      for (const suite of r.suites ?? [])
        lines.push(`deb [signed-by=${keyring}] ${baseUrl} ${suite} ${(r.components ?? ['main']).join(' ')}`)
    return `${lines.join('\n')}\n`
  },
}

const rpm: NodeConfigSupport = {
  keySuffix: '.asc',
  armoredKey: true,
  sourceSuffix: '.repo',
  render(repos, baseUrl, keyUrl) {
    const name = nodeKeyName(repos[0].path)
    // repo_gpgcheck only where the upstream signs repomd.xml (most do not); every package is checked either way.
    const signedMetadata = repos.some((r) => r.files.includes(`${r.path}/repodata/repomd.xml.asc`))
    return [
      `# ${repos[0].url}, mirrored by airlock. On the node: this file as /etc/yum.repos.d/${name}.repo`,
      `[${name}]`,
      `name=${repos[0].url} (airlock mirror)`,
      `baseurl=${baseUrl}`,
      'enabled=1',
      'gpgcheck=1',
      `repo_gpgcheck=${signedMetadata ? 1 : 0}`,
      `gpgkey=${keyUrl}`,
      '',
    ].join('\n')
  },
}

/** Per type: apt's `.list` line, rpm's `.repo` stanza. */
export const nodeConfigs: {apt: NodeConfigSupport; rpm: NodeConfigSupport} = {apt, rpm}

export function nodeConfigOf(type: OsPackageType): NodeConfigSupport {
  const c = nodeConfigs[type]
  if (!c) throw new Error(`no node configuration for OS package type ${type}`)
  return c
}
