/**
 * Benchmark: the goals, on two sets, each job against a tool doing the same
 * job in the same run, and against a baseline build when `bench.ts
 * --baseline REV` made one (the builds take turns: new, old, then old, new).
 *
 *   scale set  64 multi-arch images (about 400 MB of blobs, pushed to a local
 *              registry) + 8 files of 40 MB (gzip gets about 2:1) on nginx
 *   count set  400 tiny multi-arch images + 200 files of 1-16 KB
 *
 * Jobs and references, unthrottled loopback, every folder under TMPDIR:
 *   pull             curl of every manifest, blob and file (8 at once) + sync -f;
 *                    skopeo sync --all of the images + that curl of the files
 *   bundle           GNU tar -cf of the image layout + tar -czf of files/ and
 *                    packages/ + sync -f (the bundle made without its importer)
 *   import nginx     tar -xzf of the two file archives + sync -f
 *   import registry  skopeo sync --all of skopeo's pull into a fresh registry
 *
 * Prints per job wall and CPU time (user + sys, children included) and peak
 * RSS (GNU time), for pull and import registry the CPU time the registry
 * spent serving the job (/proc/PID/stat: on 2 cores client and registry share
 * the CPU), medians over the rounds, the ratios to the references and
 * new/old, then each goal as a PASS or FAIL line. The load average is printed
 * beside each job: the machine is shared, so compare CPU time as well as wall
 * time, and builds only within one run.
 *
 *   node --import tsx scripts/bench/goals.ts
 *
 * Knobs (env): BENCH_SET (scale, count or both: both), BENCH_ROUNDS (1),
 * BENCH_CONCURRENCY (8), AIRLOCK_BENCH_CACHE (the count set's images,
 * ~/.cache/airlock-bench).
 */
import {createHash, randomBytes} from 'node:crypto'
import {mkdir, readdir, rm, writeFile} from 'node:fs/promises'
import {homedir} from 'node:os'
import {join} from 'node:path'

import {startNginx} from '../../test/helpers/nginx.js'
import {type RegistryServer, startRegistry} from '../../test/helpers/registry.js'
import {countImageStorage} from '../../test/helpers/registry-storage.js'
import {makeTempDir} from '../../test/helpers/tmp.js'
import {
  type Build,
  builds,
  check,
  GOALS,
  hasFlag,
  loadAverage,
  MB,
  median,
  seedBenchImages,
  servedBy,
  skopeoSyncArgs,
  smallFile,
  summed,
  type Timed,
  timed,
} from '../bench-lib.js'

const SETS = (process.env.BENCH_SET ?? 'both') === 'both' ? ['scale', 'count'] : [process.env.BENCH_SET as string]
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 1)
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8)
const cache = process.env.AIRLOCK_BENCH_CACHE ?? join(homedir(), '.cache', 'airlock-bench')
const BUILDS = builds()
const RSS_GOAL_MB = GOALS.rssMb

interface SetUp {
  name: string
  describe: string
  registry: RegistryServer
  images: {repository: string; tag: string}[]
  files: {url: string; sha256: string; kind: 'binaries' | 'packages'}[]
  stop(): Promise<void>
}

/** Every manifest and blob a registry's storage holds, each once, by the first repository that links it. */
async function registryContent(dataDir: string): Promise<{repo: string; digest: string; manifest: boolean}[]> {
  const base = join(dataDir, 'docker/registry/v2/repositories')
  const seen = new Map<string, {repo: string; digest: string; manifest: boolean}>()
  for (const e of await readdir(base, {recursive: true})) {
    const m = /^(.+)\/(_layers|_manifests\/revisions)\/sha256\/([0-9a-f]{64})\/link$/.exec(e)
    if (m && !seen.has(m[3])) seen.set(m[3], {repo: m[1], digest: `sha256:${m[3]}`, manifest: m[2] !== '_layers'})
  }
  return [...seen.values()]
}

const ACCEPT =
  'Accept: application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json'

async function serveFiles(list: {path: string; data: Buffer; kind: 'binaries' | 'packages'}[]) {
  const www = await makeTempDir('airlock-bench-www-')
  for (const f of list) {
    await mkdir(join(www, f.path, '..'), {recursive: true})
    await writeFile(join(www, f.path), f.data)
  }
  const nginx = await startNginx({root: www})
  const files = list.map((f) => ({
    url: `${nginx.url}/${f.path}`,
    sha256: createHash('sha256').update(f.data).digest('hex'),
    kind: f.kind,
  }))
  return {
    files,
    async stop() {
      await nginx.stop()
      await rm(www, {recursive: true, force: true})
    },
  }
}

/** Bytes from a 16-letter alphabet: gzip gets about 2:1, as on binaries. */
function compressible(size: number): Buffer {
  const b = randomBytes(size)
  const alphabet = Buffer.from('etaoinshrdlucmfw')
  for (let i = 0; i < b.length; i++) b[i] = alphabet[b[i] & 15]
  return b
}

async function scaleSet(): Promise<SetUp> {
  const registry = await startRegistry()
  process.stderr.write('scale set: pushing 64 multi-arch images...\n')
  const images = await seedBenchImages(registry, 64)
  const served = await serveFiles(
    Array.from({length: 8}, (_, i) => ({
      path: i % 4 === 3 ? `pkgs/big-${i}.tar` : `bin/tool-${i}`,
      data: compressible(40 * MB),
      kind: i % 4 === 3 ? ('packages' as const) : ('binaries' as const),
    })),
  )
  return {
    name: 'scale',
    describe: '64 multi-arch images + 8 files of 40 MB',
    registry,
    images,
    files: served.files,
    async stop() {
      await served.stop()
      await registry.stop()
    },
  }
}

async function countSet(): Promise<SetUp> {
  const set = await countImageStorage(cache, 400)
  const registry = await startRegistry({dataDir: set.dataDir})
  const served = await serveFiles(Array.from({length: 200}, (_, i) => smallFile(i)))
  return {
    name: 'count',
    describe: '400 tiny multi-arch images + 200 files of 1-16 KB',
    registry,
    images: set.images,
    files: served.files,
    async stop() {
      await served.stop()
      await registry.stop()
    },
  }
}

/** One job's runs: each build's and each reference's, over the rounds, with the load after each. */
class Runs {
  readonly byWho = new Map<string, Timed[]>()
  readonly loads: string[] = []
  add(who: string, t: Timed): void {
    const list = this.byWho.get(who) ?? []
    list.push(t)
    this.byWho.set(who, list)
    this.loads.push(loadAverage().split(' ')[0])
  }
  wall(who: string): number | undefined {
    const l = this.byWho.get(who)
    return l ? median(l.map((t) => t.ms)) : undefined
  }
  cpu(who: string): number | undefined {
    const l = this.byWho.get(who)
    return l ? median(l.map((t) => t.cpuMs ?? 0)) : undefined
  }
  /** The CPU time of the registry the job talked to (pull: the source; import registry: the target). */
  serverCpu(who: string): number | undefined {
    const l = this.byWho.get(who)?.filter((t) => t.serverCpuMs !== undefined)
    return l && l.length > 0 ? median(l.map((t) => t.serverCpuMs!)) : undefined
  }
  spread(who: string): string {
    const l = this.byWho.get(who) ?? []
    if (l.length < 2) return ''
    const ms = l.map((t) => t.ms)
    return `${(Math.min(...ms) / 1000).toFixed(2)}-${(Math.max(...ms) / 1000).toFixed(2)}`
  }
  rssMb(who: string): number {
    return Math.max(0, ...(this.byWho.get(who) ?? []).map((t) => (t.rssKb ?? 0) / 1024))
  }
  loadRange(): string {
    const n = this.loads.map(Number)
    return `${Math.min(...n).toFixed(1)}-${Math.max(...n).toFixed(1)}`
  }
}

/** The builds in turn: this order in even rounds, reversed in odd ones. */
const inTurn = (round: number): Build[] => (round % 2 === 0 ? BUILDS : [...BUILDS].reverse())

async function runSet(set: SetUp): Promise<boolean> {
  const work = await makeTempDir(`airlock-bench-goals-${set.name}-`)
  const jobs = {pull: new Runs(), bundle: new Runs(), inginx: new Runs(), ireg: new Runs()}
  const refs = {
    curl: 'curl x8 + sync -f',
    skopeo: 'skopeo sync --all + curl files',
    tar: 'tar -cf + tar -czf x2 + sync -f',
    untar: 'tar -xzf x2 + sync -f',
    skopeoPush: 'skopeo sync --all to registry',
  }
  const loadBefore = loadAverage()
  try {
    const manifest = join(work, 'airlock.yaml')
    const fileLines = (kind: 'binaries' | 'packages') => {
      const list = set.files.filter((f) => f.kind === kind)
      return list.length === 0
        ? []
        : [`  ${kind}:`, ...list.flatMap((f) => [`    - url: ${f.url}`, `      sha256: ${f.sha256}`])]
    }
    await writeFile(
      manifest,
      `${[
        'apiVersion: airlock/v1',
        'kind: Manifest',
        'metadata:',
        `  name: ${set.name}`,
        'spec:',
        '  images:',
        ...set.images.flatMap((img) => [
          `    - ref: ${set.registry.host}/${img.repository}:${img.tag}`,
          '      platforms: [all]',
        ]),
        ...fileLines('binaries'),
        ...fileLines('packages'),
      ].join('\n')}\n`,
    )
    const content = await registryContent(set.registry.dataDir)
    const fileCfg = join(work, 'curl-files.cfg')
    const allCfg = join(work, 'curl-all.cfg')
    const outLine = (url: string, to: string) => `url = "${url}"\noutput = "${to}"\n`
    const curlFiles = (dir: string) => set.files.map((f, i) => outLine(f.url, join(dir, `file-${i}`))).join('')
    const syncFile = join(work, 'sync.yaml')
    await writeFile(
      syncFile,
      `${set.registry.host}:\n  tls-verify: false\n  images:\n${set.images.map((i) => `    ${i.repository}: ["${i.tag}"]\n`).join('')}`,
    )
    const curl = (cfg: string) =>
      timed('curl', [
        '-sS',
        '-f',
        '--parallel',
        '--parallel-immediate',
        '--parallel-max',
        String(CONCURRENCY),
        '-H',
        ACCEPT,
        '-K',
        cfg,
      ])

    for (let round = 0; round < ROUNDS; round++) {
      const dir = join(work, `round-${round}`)
      await mkdir(dir)
      const say = (what: string) =>
        process.stderr.write(`[${set.name} ${round + 1}/${ROUNDS}] ${what} (load ${loadAverage()})\n`)
      const store = (b: Build) => join(dir, `store-${b.name}`)
      const bundle = (b: Build) => join(dir, `bundle-${b.name}`)

      // pull
      for (const b of inTurn(round)) {
        say(`${b.name} pull`)
        jobs.pull.add(
          b.name,
          check(
            `${b.name} pull`,
            await servedBy(set.registry.pid, () =>
              timed(process.execPath, [
                b.cli,
                'pull',
                manifest,
                '--store',
                store(b),
                '--quiet',
                '--concurrency',
                String(CONCURRENCY),
              ]),
            ),
          ),
        )
      }
      say('curl')
      const curlDir = join(dir, 'curl')
      await mkdir(curlDir)
      await writeFile(
        allCfg,
        content
          .map((c, i) =>
            outLine(
              `${set.registry.url}/v2/${c.repo}/${c.manifest ? 'manifests' : 'blobs'}/${c.digest}`,
              join(curlDir, `c-${i}`),
            ),
          )
          .join('') + curlFiles(curlDir),
      )
      jobs.pull.add(
        'curl',
        summed(
          check('curl', await servedBy(set.registry.pid, () => curl(allCfg))),
          check('sync -f', await timed('sync', ['-f', curlDir])),
        ),
      )
      say('skopeo sync')
      const skopeoDir = join(dir, 'skopeo')
      await mkdir(join(skopeoDir, 'files'), {recursive: true})
      await writeFile(fileCfg, curlFiles(join(skopeoDir, 'files')))
      jobs.pull.add(
        'skopeo',
        summed(
          check(
            'skopeo sync',
            await servedBy(set.registry.pid, () => timed('skopeo', skopeoSyncArgs({yaml: syncFile}, {dir: skopeoDir}))),
          ),
          check('curl (files)', await curl(fileCfg)),
          check('sync -f', await timed('sync', ['-f', skopeoDir])),
        ),
      )
      await rm(curlDir, {recursive: true, force: true})

      // bundle, from a warm page cache
      check('warm-up', await timed('sh', ['-c', `find ${dir} -type f -path '*store-*' -exec cat {} + > /dev/null`]))
      for (const b of inTurn(round)) {
        say(`${b.name} bundle`)
        const args = [
          b.cli,
          'bundle',
          '--store',
          store(b),
          '--out',
          bundle(b),
          '--quiet',
          ...(hasFlag(b, 'bundle', 'importer') ? ['--no-importer'] : []),
        ]
        jobs.bundle.add(b.name, check(`${b.name} bundle`, await timed(process.execPath, args)))
      }
      say('GNU tar')
      const s = store(BUILDS[0])
      const gnu = join(dir, 'gnu')
      await mkdir(gnu)
      jobs.bundle.add(
        'tar',
        check(
          'GNU tar',
          await timed('sh', [
            '-c',
            [
              `tar -czf ${gnu}/offline-files.tar.gz -C ${s} files`,
              `if [ -d ${s}/packages ]; then tar -czf ${gnu}/component-tools.tar.gz -C ${s} packages; fi`,
              `tar -cf ${gnu}/offline-images.tar -C ${s}/images .`,
              `sync -f ${gnu}`,
            ].join(' && '),
          ]),
        ),
      )
      await rm(gnu, {recursive: true, force: true})

      // import nginx
      for (const b of inTurn(round)) {
        say(`${b.name} import nginx`)
        jobs.inginx.add(
          b.name,
          check(
            `${b.name} import nginx`,
            await timed(process.execPath, [
              b.cli,
              'import',
              'nginx',
              bundle(b),
              '--root',
              join(dir, `root-${b.name}`),
              '--quiet',
            ]),
          ),
        )
      }
      say('tar -xzf')
      const untarRoot = join(dir, 'root-tar')
      await mkdir(untarRoot)
      const nb = bundle(BUILDS[0])
      jobs.inginx.add(
        'tar',
        check(
          'tar -xzf',
          await timed('sh', [
            '-c',
            [
              `tar -xzf ${nb}/offline-files.tar.gz --strip-components=1 -C ${untarRoot}`,
              `if [ -f ${nb}/component-tools.tar.gz ]; then tar -xzf ${nb}/component-tools.tar.gz --strip-components=1 -C ${untarRoot}; fi`,
              `sync -f ${untarRoot}`,
            ].join(' && '),
          ]),
        ),
      )
      for (const b of [...BUILDS.map((x) => `root-${x.name}`), 'root-tar'])
        await rm(join(dir, b), {recursive: true, force: true})

      // import registry, each into a registry of its own
      for (const b of inTurn(round)) {
        say(`${b.name} import registry`)
        const target = await startRegistry()
        try {
          jobs.ireg.add(
            b.name,
            check(
              `${b.name} import registry`,
              await servedBy(target.pid, () =>
                timed(process.execPath, [
                  b.cli,
                  'import',
                  'registry',
                  bundle(b),
                  '--registry',
                  target.host,
                  '--concurrency',
                  String(CONCURRENCY),
                  '--quiet',
                ]),
              ),
            ),
          )
        } finally {
          await target.stop()
        }
      }
      say('skopeo sync to a registry')
      const target = await startRegistry()
      try {
        jobs.ireg.add(
          'skopeo',
          check(
            'skopeo sync to a registry',
            await servedBy(target.pid, () =>
              timed('skopeo', skopeoSyncArgs({dir: skopeoDir}, {registry: `${target.host}/bench`})),
            ),
          ),
        )
      } finally {
        await target.stop()
      }
      await rm(dir, {recursive: true, force: true})
    }
  } finally {
    await rm(work, {recursive: true, force: true})
  }

  // The table: medians over the rounds.
  const hasOld = BUILDS.length > 1
  const f = (ms?: number) => (ms === undefined ? '-' : (ms / 1000).toFixed(2))
  const x = (a?: number, b?: number) => (a === undefined || b === undefined ? '-' : `${(a / b).toFixed(2)}x`)
  const header = ['job', 'who', 'wall s', 'cpu s', 'reg cpu s', 'RSS MB', 'wall/new', 'cpu/new', 'spread s', 'load']
  const widths = [16, 36, 8, 8, 10, 8, 10, 9, 12, 10]
  const line = (r: string[]) => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('')
  const rows: string[][] = []
  const names: [keyof typeof jobs, string, [string, string][]][] = [
    [
      'pull',
      'pull',
      [
        ['curl', refs.curl],
        ['skopeo', refs.skopeo],
      ],
    ],
    ['bundle', 'bundle', [['tar', refs.tar]]],
    ['inginx', 'import nginx', [['tar', refs.untar]]],
    ['ireg', 'import registry', [['skopeo', refs.skopeoPush]]],
  ]
  for (const [key, label, rs] of names) {
    const r = jobs[key]
    const nw = r.wall('new')
    const nc = r.cpu('new')
    const who = (id: string, text: string, rss: boolean) => [
      '',
      text,
      f(r.wall(id)),
      f(r.cpu(id)),
      r.serverCpu(id) === undefined ? '' : f(r.serverCpu(id)),
      rss ? r.rssMb(id).toFixed(0) : '',
      x(r.wall(id), nw),
      x(r.cpu(id), nc),
      r.spread(id),
      '',
    ]
    const first = who('new', `new ${BUILDS[0].rev}`, true)
    first[0] = label
    first[9] = r.loadRange()
    rows.push(first)
    if (hasOld) rows.push(who('old', `old ${BUILDS[1].rev}`, true))
    for (const [id, text] of rs) rows.push(who(id, text, false))
  }
  process.stdout.write(
    `\n${set.name} set: ${set.describe}; ${ROUNDS} round(s), medians; --concurrency ${CONCURRENCY}; load average before ${loadBefore}, after ${loadAverage()}\n`,
  )
  process.stdout.write(`${line(header)}\n${rows.map(line).join('\n')}\n`)
  if (hasOld) {
    process.stdout.write('new/old:')
    for (const [key, label] of names)
      process.stdout.write(
        `  ${label} wall ${x(jobs[key].wall('new'), jobs[key].wall('old'))} cpu ${x(jobs[key].cpu('new'), jobs[key].cpu('old'))};`,
      )
    process.stdout.write('\n')
  }

  // The goals, on the new build's medians.
  const goals: [string, number | undefined, (v: number) => boolean][] = []
  const ratio = (a?: number, b?: number) => (a === undefined || b === undefined ? undefined : a / b)
  if (set.name === 'scale') {
    const g = GOALS.scale
    goals.push(
      [
        `pull <= ${g.pullMaxVsCurl}x curl x8 + sync -f (wall)`,
        ratio(jobs.pull.wall('new'), jobs.pull.wall('curl')),
        (v) => v <= g.pullMaxVsCurl,
      ],
      [
        `pull >= ${g.pullFasterThanSkopeo}x faster than skopeo (wall)`,
        ratio(jobs.pull.wall('skopeo'), jobs.pull.wall('new')),
        (v) => v >= g.pullFasterThanSkopeo,
      ],
      [
        `bundle <= ${g.bundleMaxVsTar}x GNU tar + sync -f (wall)`,
        ratio(jobs.bundle.wall('new'), jobs.bundle.wall('tar')),
        (v) => v <= g.bundleMaxVsTar,
      ],
      [
        `import nginx <= ${g.importNginxMaxVsTar}x tar -xzf + sync -f (wall)`,
        ratio(jobs.inginx.wall('new'), jobs.inginx.wall('tar')),
        (v) => v <= g.importNginxMaxVsTar,
      ],
      [
        `import registry >= ${g.importRegistryFasterThanSkopeo}x faster than skopeo (wall)`,
        ratio(jobs.ireg.wall('skopeo'), jobs.ireg.wall('new')),
        (v) => v >= g.importRegistryFasterThanSkopeo,
      ],
    )
  } else {
    const g = GOALS.count
    goals.push(
      [
        `pull >= ${g.pullFasterThanSkopeo}x faster than skopeo (wall)`,
        ratio(jobs.pull.wall('skopeo'), jobs.pull.wall('new')),
        (v) => v >= g.pullFasterThanSkopeo,
      ],
      [
        `pull <= ${g.pullMaxVsCurl}x curl + sync -f (wall)`,
        ratio(jobs.pull.wall('new'), jobs.pull.wall('curl')),
        (v) => v <= g.pullMaxVsCurl,
      ],
      [
        `bundle <= ${g.bundleMaxVsTar}x GNU tar + sync -f (wall)`,
        ratio(jobs.bundle.wall('new'), jobs.bundle.wall('tar')),
        (v) => v <= g.bundleMaxVsTar,
      ],
      [
        `import registry >= ${g.importRegistryFasterThanSkopeo}x faster than skopeo (wall)`,
        ratio(jobs.ireg.wall('skopeo'), jobs.ireg.wall('new')),
        (v) => v >= g.importRegistryFasterThanSkopeo,
      ],
    )
  }
  const worst = Math.max(...Object.values(jobs).map((r) => r.rssMb('new')))
  goals.push([`peak RSS <= ${RSS_GOAL_MB} MB in every job (MB)`, worst, (v) => v <= RSS_GOAL_MB])
  let ok = true
  for (const [text, v, pass] of goals) {
    const met = v !== undefined && pass(v)
    ok &&= met
    process.stdout.write(`${met ? 'PASS' : 'FAIL'}  ${set.name}: ${text}: ${v === undefined ? '-' : v.toFixed(2)}\n`)
  }
  return ok
}

let allMet = true
for (const name of SETS) {
  const set = name === 'scale' ? await scaleSet() : name === 'count' ? await countSet() : undefined
  if (!set) {
    process.stderr.write(`BENCH_SET must be scale, count or both, not ${name}\n`)
    process.exit(2)
  }
  try {
    allMet = (await runSet(set)) && allMet
  } finally {
    await set.stop()
  }
}
process.stdout.write(
  `\ngoals: ${allMet ? 'all met' : 'NOT all met'} (builds: ${BUILDS.map((b) => `${b.name} ${b.rev}`).join(', ')})\n`,
)
