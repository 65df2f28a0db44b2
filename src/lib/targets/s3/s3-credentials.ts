import {readFile} from 'node:fs/promises'
import {homedir} from 'node:os'
import {join} from 'node:path'

import {UsageError} from '../../errors.js'

export interface S3Credentials {
  accessKeyId: string
  secretAccessKey: string
  sessionToken?: string
  /** Where they came from, for messages; never the values. */
  source: string
}

export interface CredentialInput {
  accessKey?: string
  secretKey?: string
  profile?: string
}

/** `[section]` -> key -> value of an AWS-style INI file. */
export function parseIni(text: string): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>()
  let section: Map<string, string> | undefined
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    const head = /^\[\s*([^\]]+?)\s*\]$/.exec(line)
    if (head) {
      section = new Map()
      out.set(head[1], section)
      continue
    }
    const eq = line.indexOf('=')
    if (eq === -1 || !section) continue
    section.set(line.slice(0, eq).trim().toLowerCase(), line.slice(eq + 1).trim())
  }
  return out
}

/**
 * The contract's order, without the SDK's default chain (which would end by
 * asking a cloud metadata address, a long wait on an air-gapped seed node):
 * flags, else AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, else the shared
 * credentials file (`AWS_SHARED_CREDENTIALS_FILE` or ~/.aws/credentials)
 * under `--profile`, AWS_PROFILE or `default`.
 */
export async function resolveS3Credentials(
  input: CredentialInput,
  env: NodeJS.ProcessEnv = process.env,
): Promise<S3Credentials> {
  if (input.accessKey !== undefined || input.secretKey !== undefined) {
    if (!input.accessKey || !input.secretKey) throw new UsageError('--access-key and --secret-key go together')
    return {accessKeyId: input.accessKey, secretAccessKey: input.secretKey, source: 'flags'}
  }
  if (!input.profile && env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    return {
      accessKeyId: env.AWS_ACCESS_KEY_ID,
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
      sessionToken: env.AWS_SESSION_TOKEN || undefined,
      source: 'environment',
    }
  }
  const file = env.AWS_SHARED_CREDENTIALS_FILE || join(env.HOME || homedir(), '.aws', 'credentials')
  const profile = input.profile || env.AWS_PROFILE || 'default'
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch {
    throw new UsageError(
      'no S3 credentials: give --access-key and --secret-key, set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or write them to ~/.aws/credentials',
      {
        details: [`${file} could not be read`],
      },
    )
  }
  const section = parseIni(text).get(profile)
  const id = section?.get('aws_access_key_id')
  const secret = section?.get('aws_secret_access_key')
  if (!id || !secret) throw new UsageError(`no credentials for profile ${profile} in ${file}`)
  return {
    accessKeyId: id,
    secretAccessKey: secret,
    sessionToken: section?.get('aws_session_token') || undefined,
    source: `${file} [${profile}]`,
  }
}
