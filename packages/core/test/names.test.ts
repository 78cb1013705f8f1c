import assert from 'node:assert/strict'
import { test } from 'node:test'
import { CoreErrorCode, isSwarmpackError, isValidPackageName, parsePackageName, validatePackageName, validateVersion, validateVersionRange } from '@swarmpack/core'

test('valid package names: lower case, optional scope', () => {
  for (const n of ['a', 'left-pad', 'lodash.merge', 'under_score', '9lives', '@scope/pkg', '@my-org/x.y_z', 'a'.repeat(100)]) {
    assert.ok(isValidPackageName(n), n)
  }
  assert.deepEqual(parsePackageName('@scope/pkg'), { scope: 'scope', name: 'pkg' })
  assert.deepEqual(parsePackageName('pkg'), { name: 'pkg' })
})

test('invalid package names raise ERR_INVALID_NAME', () => {
  const bad = ['', 'Upper', 'has space', '../etc', 'a/b', '@scope', '@scope/', '@/x', '@Scope/x', '.hidden', '_private', '-dash',
    'a\\b', 'a\u0000b', 'C:x', 'x%2f', 'tilde~', 'node_modules', '@s/node_modules', 'a'.repeat(101), `@${'s'.repeat(100)}/${'n'.repeat(100)}x`, 'é']
  for (const n of bad) {
    assert.throws(() => validatePackageName(n), (e: unknown) => isSwarmpackError(e, CoreErrorCode.INVALID_NAME), JSON.stringify(n))
  }
  assert.throws(() => validatePackageName(42), (e: unknown) => isSwarmpackError(e, CoreErrorCode.INVALID_NAME))
})

test('versions must be strict semver; ranges npm ranges', () => {
  for (const v of ['0.0.0', '1.2.3', '1.2.3-rc.1', '1.2.3-rc.1+build.5', '10.20.30']) validateVersion(v)
  for (const v of ['', '1', '1.2', 'v1.2.3', '=1.2.3', '01.2.3', '1.2.3 ', 'latest', '1.2.3.4', 5]) {
    assert.throws(() => validateVersion(v), (e: unknown) => isSwarmpackError(e, CoreErrorCode.INVALID_VERSION), String(v))
  }
  for (const r of ['^1.2.0', '~2', '>=1 <3', '*', '1.x || 2.x']) validateVersionRange(r)
  for (const r of ['not a range', '>>1', 7]) {
    assert.throws(() => validateVersionRange(r), (e: unknown) => isSwarmpackError(e, CoreErrorCode.INVALID_VERSION), String(r))
  }
})
