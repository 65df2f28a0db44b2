import {Command, Flags, type Interfaces} from '@oclif/core'

import {AirlockError, isAirlockError, ManifestError} from './errors.js'
import {createProgress, type Progress} from './ui/index.js'

export type CommandFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>
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
  private progressInstance?: Progress

  public override async init(): Promise<void> {
    await super.init()
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
    this.progressInstance ??= createProgress({quiet: Boolean(this.flags?.quiet), heading: this.id ?? 'airlock'})
    return this.progressInstance
  }

  /** Print a line of human output on stdout, unless --json is on. */
  protected out(line: string): void {
    if (!this.jsonEnabled()) this.log(line)
  }

  protected override async finally(err: Error | undefined): Promise<void> {
    await this.progressInstance?.close()
    return super.finally(err)
  }

  protected override async catch(err: Interfaces.CommandError): Promise<unknown> {
    await this.progressInstance?.close()
    if (isAirlockError(err)) return this.report(err)
    // oclif's own parse errors (unknown flag, missing argument) already carry exit 2.
    const oclifExit = (err as {oclif?: {exit?: number}}).oclif?.exit
    if (oclifExit !== undefined) return super.catch(err)
    if (this.flags?.verbose) process.stderr.write(`${err.stack ?? err.message}\n`)
    return this.report(
      new AirlockError('failure', err.message || String(err), {
        suggestions: this.flags?.verbose ? [] : ['run again with --verbose to see where it failed'],
      }),
    )
  }

  private report(err: AirlockError): void {
    process.exitCode = err.exitCode
    const lines = [`Error: ${err.message}`, ...err.details.map((d) => `  ${d}`)]
    for (const s of err.suggestions) lines.push(`Hint: ${s}`)
    // The human text always goes to stderr; with --json, stdout also gets the one document.
    process.stderr.write(`${lines.join('\n')}\n`)
    if (this.jsonEnabled()) {
      // A manifest's problems go out structured too, so scripts need not parse the details lines.
      const problems = err instanceof ManifestError ? {problems: err.problems} : {}
      this.logJson({error: {kind: err.kind, message: err.message, details: err.details, exitCode: err.exitCode, ...problems}})
    }
  }
}
