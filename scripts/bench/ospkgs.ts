/**
 * Benchmark: OS packages (apt).
 *
 * 1. pull: a signed apt repository of BENCH_DEBS packages built here with
 *    Debian's tools (dpkg-deb, apt-ftparchive, gpg; test/helpers/apt-repo.ts),
 *    served by nginx on loopback; `airlock pull` of a manifest whose one
 *    requested package needs a closure of 111 of them (a tree of
 *    Depends with alternatives, versions and virtual packages), into an
 *    empty store, then again (a re-pull fetches only InRelease). Time and
 *    peak RSS of each.
 * 2. resolve only: a generated Packages index the size of Debian's main
 *    (BENCH_STANZAS stanzas, about 50 MB of text), read by the resolver's
 *    own code from dist/ (openIndex, readPackages, AptUniverse, aptClosure)
 *    in a fresh node process, and the closure of one package (121). The
 *    whole process's wall time, CPU time (user + system: what the wall time
 *    is on an idle core) and peak RSS against the limits (3 s, 200 MB), as
 *    pass/FAIL lines; the same from the index xz-compressed (what a Debian
 *    mirror serves), beside it.
 *
 *   node --import tsx scripts/bench/ospkgs.ts
 *
 * Knobs (env): BENCH_DEBS (140), BENCH_STANZAS (63000).
 */
import {execFileSync} from 'node:child_process'
import {createWriteStream} from 'node:fs'
import {cp, readdir, rm, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'

import {type DebSpec, makeAptRepo} from '../../test/helpers/apt-repo.js'
import {startNginx} from '../../test/helpers/nginx.js'
import {makeTempDir} from '../../test/helpers/tmp.js'
import {check, MB, root, secs, timed} from '../bench-lib.js'

const DEBS = Number(process.env.BENCH_DEBS ?? 140)
const STANZAS = Number(process.env.BENCH_STANZAS ?? 63_000)
const LIMIT_MS = 3000
const LIMIT_MB = 200

const mb = (kb: number | undefined) => `${((kb ?? 0) / 1024).toFixed(0)} MB`
const say = (s: string) => process.stdout.write(`${s}\n`)

/**
 * The repository: lib0..libT-1 a binary tree of Depends (lib{2i+1} at a
 * version, or an alternative; lib{2i+2}), every tenth also a virtual name
 * that prov{i} provides, every tenth in two versions; the rest unrelated.
 * Requesting lib0 takes the tree and its providers.
 */
function repoPackages(total: number): DebSpec[] {
  const tree = Math.round(total * 0.72)
  const out: DebSpec[] = []
  for (let i = 0; i < tree; i++) {
    const deps: string[] = []
    if (2 * i + 1 < tree) deps.push(`lib${2 * i + 1} (>= 1.0) | libalt${i}`)
    if (2 * i + 2 < tree) deps.push(`lib${2 * i + 2}`)
    if (i % 10 === 5) {
      deps.push(`virt${i}`)
      out.push({name: `prov${i}`, version: '1.0-1', provides: `virt${i}`, payload: 32 * 1024})
    }
    out.push({
      name: `lib${i}`,
      version: '1.1-1',
      depends: deps.join(', ') || undefined,
      payload: (1 + (i % 4)) * 64 * 1024,
    })
    if (i % 10 === 0) out.push({name: `lib${i}`, version: '1.0-1', payload: 64 * 1024})
  }
  for (let i = 0; out.length < total; i++) out.push({name: `unrelated${i}`, version: '1.0-1', payload: 64 * 1024})
  return out
}

async function countFiles(dir: string, suffix: string): Promise<{n: number; bytes: number}> {
  let n = 0
  let bytes = 0
  for (const e of await readdir(dir, {recursive: true, withFileTypes: true})) {
    if (e.isFile() && e.name.endsWith(suffix)) {
      n++
      bytes += (await stat(join(e.parentPath, e.name))).size
    }
  }
  return {n, bytes}
}

/** A Packages index like Debian's main: about 800 bytes a stanza; p0..p109 a tree of Depends with 11 virtual names (the closure of p0: 121), the rest depending on their neighbours. */
async function writeBigIndex(file: string, stanzas: number): Promise<void> {
  const out = createWriteStream(file)
  const hex = (i: number, len: number) =>
    i
      .toString(16)
      .padStart(8, '0')
      .repeat(Math.ceil(len / 8))
      .slice(0, len)
  const TREE = 110
  let chunk = ''
  for (let i = 0; i < stanzas; i++) {
    const version = `1.${i % 7}.${i % 13}-${1 + (i % 3)}`
    const arch = i % 4 === 0 ? 'all' : 'amd64'
    const deps: string[] = []
    if (i < TREE) {
      if (2 * i + 1 < TREE) deps.push(`p${2 * i + 1} (>= 1.0) | p${TREE + i}`)
      if (2 * i + 2 < TREE) deps.push(`p${2 * i + 2}`)
      if (i % 10 === 5) deps.push(`virt-tree${i}`)
    } else if (i < stanzas - 20) {
      deps.push(`p${i - 1 - (i % 50)} (>= 0.1)`, `p${i - 2} | p${i - 3}`, 'libc6 (>= 2.34)')
    }
    // The last 20 provide the tree's virtual names (and depend on nothing).
    const provides =
      i >= stanzas - 20 ? `virt-tree${(stanzas - 1 - i) * 10 + 5}` : i % 20 === 0 ? `virt${i}` : undefined
    const lines = [
      `Package: p${i}`,
      `Version: ${version}`,
      `Installed-Size: ${100 + (i % 5000)}`,
      `Maintainer: Example Maintainers <pkg-p${i}@lists.example.org>`,
      `Source: p${i}-src (${version})`,
      ...(i % 2 === 0 ? [`Original-Maintainer: Upstream Example Team <team-p${i}@example.org>`] : []),
      `Architecture: ${arch}`,
      ...(i % 3 === 0 && arch !== 'all' ? ['Multi-Arch: same'] : []),
      ...(provides ? [`Provides: ${provides}`] : []),
      ...(deps.length > 0 ? [`Depends: ${deps.join(', ')}`] : []),
      ...(i % 9 === 0 ? [`Recommends: p${(i * 31) % stanzas}`] : []),
      ...(i % 2 === 0
        ? [`Suggests: p${(i * 17) % stanzas}-doc, p${(i * 13) % stanzas}-dbg`, `Breaks: p${(i * 7) % stanzas} (<< 0.9)`]
        : []),
      `Description: synthetic package ${i} for airlock's resolver benchmark`,
      `Homepage: https://example.org/projects/p${i}`,
      `Description-md5: ${hex(i, 32)}`,
      `Tag: devel::library, implemented-in::c, role::shared-lib, suite::example, works-with::text, uitoolkit::none, interface::commandline, scope::utility`,
      'Section: libs',
      'Priority: optional',
      `Filename: pool/main/p/p${i}/p${i}_${version}_${arch}.deb`,
      `Size: ${1000 + ((i * 7919) % 500_000)}`,
      `MD5sum: ${hex(i * 3, 32)}`,
      `SHA256: ${hex(i * 5, 64)}`,
    ]
    chunk += `${lines.join('\n')}\n\n`
    if (chunk.length > 1 << 20) {
      if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()))
      chunk = ''
    }
  }
  chunk +=
    'Package: libc6\nVersion: 2.36-9\nArchitecture: amd64\nFilename: pool/main/g/glibc/libc6_2.36-9_amd64.deb\nSize: 2800000\nSHA256: ' +
    hex(7, 64) +
    '\n\n'
  out.end(chunk)
  await new Promise<void>((r, j) => out.on('finish', () => r()).on('error', j))
}

// The resolver as shipped (dist/), in a process of its own so its peak RSS is the resolve's alone.
const RESOLVE = `
const [file, compression, name] = process.argv.slice(1)
const {openIndex, readPackages} = await import(${JSON.stringify(pathToFileURL(join(root, 'dist/lib/ospkgs/apt/packages-index.js')).href)})
const {AptUniverse, aptClosure} = await import(${JSON.stringify(pathToFileURL(join(root, 'dist/lib/ospkgs/apt/closure.js')).href)})
const t0 = performance.now()
const u = new AptUniverse()
let stanzas = 0
for await (const p of readPackages(await openIndex(file, compression), 0, file)) { u.add(p); stanzas++ }
const t1 = performance.now()
const closure = aptClosure(u, [{name}], {arch: 'amd64', recommends: false})
const t2 = performance.now()
const cpu = process.cpuUsage()
process.stderr.write('RESULT=' + JSON.stringify({stanzas, closure: closure.length, readMs: t1 - t0, closureMs: t2 - t1, cpuMs: (cpu.user + cpu.system) / 1000}) + '\\n')
`

const work = await makeTempDir('airlock-bench-ospkgs-')
const nginx = await startNginx()
try {
  // 1. pull from a local mirror
  const arch = execFileSync('dpkg', ['--print-architecture']).toString().trim()
  process.stderr.write(`building a signed apt repository of ${DEBS} packages (dpkg-deb, apt-ftparchive, gpg)...\n`)
  const repo = await makeAptRepo(repoPackages(DEBS), {arch})
  await rm(join(nginx.root, 'debian'), {recursive: true, force: true})
  await cp(repo.root, join(nginx.root, 'debian'), {recursive: true})
  const manifest = join(work, 'node-prep.yaml')
  await writeFile(
    manifest,
    [
      'apiVersion: airlock/v1',
      'kind: Manifest',
      'metadata: {name: bench-ospkgs, version: "1"}',
      'spec:',
      '  osPackages:',
      '    - type: apt',
      `      url: ${nginx.url}/debian`,
      '      suites: [stable]',
      `      architectures: [${arch}]`,
      `      keyring: ${repo.keyring}`,
      '      packages: [lib0]',
      '',
    ].join('\n'),
  )
  const store = join(work, 'store')
  const first = check(
    'airlock pull',
    await timed(process.execPath, ['bin/run.js', 'pull', manifest, '--store', store, '--quiet'], {rss: true}),
  )
  const debs = await countFiles(store, '.deb')
  const before = (await nginx.accessLines()).length
  const again = check(
    'airlock pull (again)',
    await timed(process.execPath, ['bin/run.js', 'pull', manifest, '--store', store, '--quiet'], {rss: true}),
  )
  const requests = (await nginx.accessLines()).length - before
  say(`repository: ${DEBS} packages; closure of lib0: ${debs.n} packages, ${(debs.bytes / MB).toFixed(1)} MB`)
  say(`airlock pull (empty store)        ${secs(first.ms).padStart(9)}   peak RSS ${mb(first.rssKb)}`)
  say(
    `airlock pull (again, all held)    ${secs(again.ms).padStart(9)}   peak RSS ${mb(again.rssKb)}   ${requests} request(s)`,
  )

  // 2. resolve only, against a Debian-sized index
  process.stderr.write(`generating a Packages index of ${STANZAS} stanzas...\n`)
  const index = join(work, 'Packages')
  await writeBigIndex(index, STANZAS)
  const size = (await stat(index)).size
  check('xz', await timed('xz', ['-k', '-T2', '-6', index]))
  const xzSize = (await stat(`${index}.xz`)).size
  say(`index: ${STANZAS} stanzas, ${(size / MB).toFixed(1)} MB (${(xzSize / MB).toFixed(1)} MB as .xz)`)
  for (const [compression, file] of [
    ['none', index],
    ['xz', `${index}.xz`],
  ] as const) {
    const t = check(
      `resolve (${compression})`,
      await timed(process.execPath, ['--input-type=module', '-e', RESOLVE, file, compression, 'p0'], {rss: true}),
    )
    const r = JSON.parse(/RESULT=(.*)/.exec(t.stderr)![1]) as {
      stanzas: number
      closure: number
      readMs: number
      closureMs: number
      cpuMs: number
    }
    const rssMb = (t.rssKb ?? 0) / 1024
    const detail = `${secs(t.ms)} wall, ${secs(r.cpuMs)} CPU (read ${secs(r.readMs)}, closure ${r.closureMs.toFixed(0)} ms; ${r.stanzas} stanzas, closure of ${r.closure}), peak RSS ${rssMb.toFixed(0)} MB`
    say(`resolve, index ${compression === 'none' ? 'as text' : 'as .xz (unpacked as it streams)'}: ${detail}`)
    say(`  ${compression}: wall time < 3 s: ${t.ms < LIMIT_MS ? 'pass' : 'FAIL'}`)
    say(`  ${compression}: CPU time < 3 s: ${r.cpuMs < LIMIT_MS ? 'pass' : 'FAIL'}`)
    say(`  ${compression}: peak RSS < 200 MB: ${rssMb < LIMIT_MB ? 'pass' : 'FAIL'}`)
  }
} finally {
  await nginx.stop()
  await rm(work, {recursive: true, force: true})
}
