/** Scope patterns: `*` stays inside one segment, and containment is conservative. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isValidPattern, patternMatches, patternWithin, scopeWithin } from '../src/index.js'

describe('trust: names and scope patterns', () => {
  it('matches within one segment only', () => {
    assert.equal(patternMatches('@acme/*', '@acme/web'), true)
    assert.equal(patternMatches('@acme/*', '@acme'), false)
    assert.equal(patternMatches('*', '@acme/web'), false)
    assert.equal(patternMatches('*', 'lodash'), true)
    assert.equal(patternMatches('@acme*', '@acme/web'), false)
    assert.equal(patternMatches('@acme/web*', '@acme/web'), true)
    assert.equal(patternMatches('@acme/web*', '@acme/webapp'), true)
    assert.equal(patternMatches('@acme/web*', '@acme/we'), false)
    assert.equal(patternMatches('@acme/*-cli', '@acme/x-cli'), true)
    assert.equal(patternMatches('@acme/*-cli', '@acme/-cl'), false)
    assert.equal(patternMatches('@*/web', '@evil/web'), true)
    assert.equal(patternMatches('@acme/web', '@ACME/web'), false)
    assert.equal(patternMatches('@acme/*', '@acme/../etc'), false)
  })

  it('refuses malformed patterns', () => {
    for (const p of ['', '**', '@acme/**', 'a//b', '/a', 'a/', 'a/*b*', 'A*', '..', 'a/b/c/d/e/f/g/h/i', 'x y']) {
      assert.equal(isValidPattern(p), false, p)
    }
  })

  it('containment: narrower within wider, never the reverse', () => {
    assert.equal(patternWithin('@acme/web', '@acme/*'), true)
    assert.equal(patternWithin('@acme/web*', '@acme/*'), true)
    assert.equal(patternWithin('@acme/web*', '@acme/we*'), true)
    assert.equal(patternWithin('@acme/*', '@acme/web*'), false)
    assert.equal(patternWithin('@acme/*-cli', '@acme/*cli'), true)
    assert.equal(patternWithin('@acme/*cli', '@acme/*-cli'), false)
    assert.equal(patternWithin('@acme/*', '*'), false)
    assert.equal(patternWithin('*', '@acme/*'), false)
    assert.equal(scopeWithin(['@acme/a', '@acme/b*'], ['@acme/*']), true)
    assert.equal(scopeWithin(['@acme/a', '@other/b'], ['@acme/*']), false)
  })

  it('containment agrees with matching on sample names', () => {
    const patterns = ['*', '@acme/*', '@acme/web*', '@acme/*-cli', '@acme/web', '@*/web', 'lib*', '*js']
    const names = ['lib', 'libjs', 'react', '@acme/web', '@acme/webapp', '@acme/x-cli', '@acme/-cli', '@zzz/web', 'js', '@acme/api']
    for (const inner of patterns) {
      for (const outer of patterns) {
        if (!patternWithin(inner, outer)) continue
        for (const n of names) if (patternMatches(inner, n)) assert.ok(patternMatches(outer, n), `${inner} within ${outer} but ${n}`)
      }
    }
  })
})
