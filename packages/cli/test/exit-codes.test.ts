/** The error class (and exit code) of each kind of failure the node reports. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ExitCode, classify, exitCodeOf } from '../src/exit-codes.js'
import { errorReport, jsonReplacer } from '../src/output.js'
import { CID } from 'multiformats/cid'

const err = (code: string, details?: Record<string, unknown>): Error => Object.assign(new Error(code), { code, ...(details !== undefined ? { details } : {}) })

describe('exit codes', () => {
  it('maps each code to its class', () => {
    const cases: Array<[string, number]> = [
      ['ERR_USAGE', ExitCode.USAGE], ['ERR_CONFIG_INVALID', ExitCode.USAGE], ['ERR_LOCK_INVALID', ExitCode.USAGE],
      ['ERR_GENERATION_NOT_FOUND', ExitCode.NOT_FOUND], ['ERR_CATALOG_NOT_FOUND', ExitCode.NOT_FOUND], ['ERR_NO_VARIANT', ExitCode.NOT_FOUND],
      ['ERR_TRUST_REVOKED', ExitCode.TRUST], ['ERR_TRUST_REFUSED', ExitCode.TRUST],
      ['ERR_UNRESOLVABLE', ExitCode.CONFLICT], ['ERR_LOCK_STALE', ExitCode.CONFLICT], ['ERR_STORE_LOCKED', ExitCode.CONFLICT],
      ['ERR_INDEX_UNAVAILABLE', ExitCode.NETWORK], ['ERR_FETCH_INCOMPLETE', ExitCode.NETWORK], ['ERR_HTTP_TIMEOUT', ExitCode.NETWORK], ['ECONNREFUSED', ExitCode.NETWORK],
      ['ERR_IO', ExitCode.IO], ['EACCES', ExitCode.IO], ['ENOSPC', ExitCode.IO], ['ERR_DATA_DIR_CORRUPT', ExitCode.IO],
      ['ERR_ABORTED', ExitCode.INTERRUPTED], ['ERR_HOOK_FAILED', ExitCode.FAILURE], ['ERR_SOMETHING_NEW', ExitCode.FAILURE]
    ]
    for (const [code, exit] of cases) assert.equal(exitCodeOf(classify(err(code))), exit, code)
    assert.equal(classify(new Error('no code')), 'failure')
  })

  it('an apply that failed takes the class of its first cause', () => {
    assert.equal(classify(err('ERR_APPLY_FAILED', { errors: [err('ERR_FETCH_INCOMPLETE')] })), 'network')
    assert.equal(classify(err('ERR_APPLY_FAILED', { errors: [err('ERR_HOOK_FAILED'), err('ERR_IO')] })), 'failure')
  })

  it('error reports carry code, message, hint and exit code; JSON shows CIDs as strings', () => {
    const r = errorReport(err('ERR_LOCK_STALE'))
    assert.equal(r.exitCode, ExitCode.CONFLICT)
    assert.match(r.hint, /resolve --write/)
    const cid = CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')
    assert.equal(JSON.stringify({ root: cid, bytes: new Uint8Array([1, 2]) }, jsonReplacer), '{"root":"bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy","bytes":"AQI="}')
  })
})
