import {Command, Flags, type Interfaces} from '@oclif/core'

import {AirlockError, isAirlockError, UsageError} from '../lib/errors.js'
import {tuneHeap} from '../lib/heap.js'
import {errorDocument, errorText} from '../lib/ui/error-report.js'
import {CountingProgress, createProgress, type Progress} from '../lib/ui/index.js'

export type CommandFlags<T extends typeof Command> = Interfaces.InferredFlags<
  (typeof BaseCommand)['baseFlags'] & T['flags']
>
export type CommandArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

/**
 * Every airlock command extends this: `--json` (one JSON document on stdout),
 * `--quiet`, `--verbose`, progress on stderr, and errors mapped to exit codes
 * without stack traces for a user's mistakes.
 */
export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true

  static override baseFlags = {
    quiet: Flags.boolean({char: 'q', description: 'Print no progress on stderr.', helpGroup: 'GLOBAL'}),
    verbose: Flags.boolean({description: 'Print stack traces of unexpected errors.', helpGroup: 'GLOBAL'}),
  }

  protected flags!: CommandFlags<T>
  protected args!: CommandArgs<T>
  private progressInstance?: CountingProgress
  private interrupting = false
  private readonly onInterrupt = (): void => void this.interrupted()

  public override async init(): Promise<void> {
    tuneHeap()
    await super.init()
    // `on`, not `once`: the live view's cursor restorer (signal-exit) re-sends SIGINT when it is the only listener left.
    process.on('SIGINT', this.onInterrupt)
    const {args, flags} = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    })
    this.flags = flags as CommandFlags<T>
    this.args = args as CommandArgs<T>
  }

  /** The progress renderer, created on first use. */
  protected get progress(): Progress {
    this.progressInstance ??= new CountingProgress(
      createProgress({quiet: Boolean(this.flags?.quiet), heading: (this.id ?? 'airlock').replaceAll(':', ' ')}),
    )
    return this.progressInstance
  }

  /** Print a line of human output on stdout, unless --json is on. */
  protected out(line: string): void {
    if (!this.jsonEnabled()) this.log(line)
  }

  /**
   * What an interrupted run (Ctrl-C) leaves behind and how to go on, one or
   * two sentences; `done` and `of` count the tasks that had finished.
   */
  protected interruptNote(_done: number, _of: number): string {
    return 'Nothing was changed.'
  }

  /** For a command that stops on Ctrl-C its own way (serve): the exit-130 handler is removed. */
  protected handleInterruptItself(): void {
    process.removeListener('SIGINT', this.onInterrupt)
  }

  /**
   * Ctrl-C: stop the live view (the cursor comes back), say what was kept
   * and that running the same command again goes on from there, exit 130.
   */
  private async interrupted(): Promise<void> {
    // A second Ctrl-C while the view closes: stop at once.
    if (this.interrupting) process.exit(130)
    this.interrupting = true
    const p = this.progressInstance
    // The live view ends its frame and writes out the lines it held; then the screen is clean for the note.
    await p?.close()
    const message = `Interrupted. ${this.interruptNote(p?.finished ?? 0, p?.started ?? 0)}`
    process.stderr.write(`\n${message}\n`)
    if (this.jsonEnabled())
      process.stdout.write(`${JSON.stringify({error: {kind: 'interrupted', message, exitCode: 130}}, null, 2)}\n`)
    process.exit(130)
  }

  protected override async finally(err: Error | undefined): Promise<void> {
    process.removeListener('SIGINT', this.onInterrupt)
    await this.progressInstance?.close()
    return super.finally(err)
  }

  protected override async catch(err: Interfaces.CommandError): Promise<unknown> {
    await this.progressInstance?.close()
    if (isAirlockError(err)) return this.report(err)
    // oclif's own parse errors (unknown flag, missing argument, a value out of range): a usage error like ours.
    const oclif = (err as {oclif?: {exit?: number}; code?: string}).oclif
    if (oclif?.exit !== undefined && (err as {code?: string}).code !== 'EEXIT')
      return this.report(parseErrorToUsage(err, this.config.bin, this.id))
    if ((err as {code?: string}).code === 'EEXIT') return super.catch(err)
    if (this.flags?.verbose) process.stderr.write(`${err.stack ?? err.message}\n`)
    return this.report(
      new AirlockError('failure', err.message || String(err), {
        suggestions: this.flags?.verbose ? [] : ['run again with --verbose to see where it failed'],
      }),
    )
  }

  private report(err: AirlockError): void {
    process.exitCode = err.exitCode
    // The human text always goes to stderr; with --json, stdout also gets the one document.
    process.stderr.write(errorText(err))
    if (this.jsonEnabled()) this.logJson(errorDocument(err))
  }
}

/**
 * oclif's parse error as our usage error: its message without the help
 * footer and without the note on multi-value flags (which only matters when
 * an argument follows such a flag, and reads as noise otherwise).
 */
export function parseErrorToUsage(err: Error, bin: string, id: string | undefined): UsageError {
  let text = err.message
    .replace(/\n*See more help with --help\s*$/, '')
    .replace(/\n*Note: [\s\S]*?beginning of arguments\.?/, '')
  // `Parsing --concurrency \n\tExpected an integer ...` -> `--concurrency: expected an integer ...`
  text = text.replace(/^Parsing (--\S+)\s*\n\s*(\w)/, (_m, flag: string, c: string) => `${flag}: ${c.toLowerCase()}`)
  const lines = text
    .split('\n')
    .map((l) => l.trim().replace(/^Missing required flag (\w[\w-]*)$/, 'missing required flag --$1'))
    .filter((l) => l && !/^The following errors? occurred:?$/.test(l))
  // `Missing 1 required arg:` / `manifest  Path of ...` -> `missing argument MANIFEST (Path of ...)`
  const missing = (err as {args?: {name?: string; description?: string}[]}).args
  if (/^Missing \d+ required arg/.test(lines[0] ?? '') && missing?.every((a) => a.name)) {
    lines.splice(
      0,
      lines.length,
      ...missing.map(
        (a) =>
          `missing argument ${a.name!.toUpperCase()}${a.description ? `: ${a.description.replace(/\.$/, '')}` : ''}`,
      ),
    )
    if (lines.length > 1) lines.unshift(`missing ${lines.length} arguments`)
  }
  const command = [bin, ...(id ? id.split(':') : [])].join(' ')
  return new UsageError((lines[0] ?? 'bad usage').replace(/:$/, ''), {
    details: lines.slice(1),
    suggestions: [`${command} --help shows the arguments and flags`],
  })
}
